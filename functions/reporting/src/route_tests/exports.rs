//! Whole CSV exports past the inline threshold: written to the export bucket (moto) and answered
//! with a presigned link; under it, or without a bucket, or paged, answered as before.

use lambda_http::http::{StatusCode, header};
use serde_json::Value;

use super::common::{Harness, Policies, body_text};
use crate::{Exports, PART_SIZE};

/// A small inline threshold, so a few dozen rows pass it.
const THRESHOLD: usize = 2 * 1024;

fn content_type(response: &lambda_http::Response<lambda_http::Body>) -> String {
    response.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned()
}

/// What the inline export of all the client's rows is (no threshold reached).
async fn inline_export(h: &Harness, client: &domain::ClientId) -> String {
    let (text, next) = crate::export_csv(&h.app, client, None, None, usize::MAX)
        .await
        .expect("inline export");
    assert!(next.is_none());
    text
}

/// The keys in `bucket` under `prefix`.
async fn keys(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Vec<String> {
    s3.list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .expect("listed")
        .contents
        .unwrap_or_default()
        .into_iter()
        .filter_map(|o| o.key)
        .collect()
}

#[tokio::test]
async fn a_whole_export_past_the_threshold_is_a_link_to_the_same_csv_and_under_it_stays_inline() {
    let h = Harness::start().await;
    let (s3, bucket) = h.export_bucket().await;
    let exports = Exports::fixed(Some(bucket.clone()), s3.clone(), THRESHOLD, PART_SIZE);
    let big = h.open_account("exporter-big", Policies::None).await;
    h.seed_rows(&big.client, 60).await;
    let small = h.open_account("exporter-small", Policies::None).await;
    let expected = inline_export(&h, &big.client).await;
    assert!(expected.len() > THRESHOLD, "{} bytes", expected.len());

    let token = h.token("exporter-big");
    let response = h
        .get_exporting(&exports, &token, "/v1/activity?format=csv")
        .await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        body_text(&response)
    );
    assert!(
        content_type(&response).starts_with("application/json"),
        "{}",
        content_type(&response)
    );
    let link: Value = serde_json::from_str(&body_text(&response)).expect("JSON link");
    let url = link["url"].as_str().expect("url");
    assert_eq!(link["bytes"].as_u64(), Some(expected.len() as u64));
    let data_rows = csv::Reader::from_reader(expected.as_bytes())
        .records()
        .count();
    assert_eq!(link["rows"].as_u64(), Some(data_rows as u64));
    assert_eq!(data_rows, 61, "60 seeded rows and account.opened");
    let expires = time::OffsetDateTime::parse(
        link["expiresAt"].as_str().expect("expiresAt"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("RFC 3339");
    let left = expires - time::OffsetDateTime::now_utc();
    assert!(
        left > time::Duration::minutes(14) && left <= time::Duration::minutes(15),
        "{left}"
    );

    // The object: under the client's prefix, exactly the inline export's bytes.
    let stored = keys(&s3, &bucket, "exports/").await;
    assert_eq!(stored.len(), 1, "{stored:?}");
    let key = &stored[0];
    assert!(
        key.starts_with("exports/exporter-big/") && key.ends_with(".csv"),
        "{key}"
    );
    assert!(
        url.contains(key.as_str()),
        "the link is to the object written"
    );
    let fetched = reqwest::get(url).await.expect("link fetched");
    assert_eq!(fetched.status(), reqwest::StatusCode::OK);
    let bytes = fetched.bytes().await.unwrap();
    assert_eq!(
        bytes.as_ref(),
        expected.as_bytes(),
        "S3 holds exactly the inline export"
    );
    let head = s3
        .head_object()
        .bucket(&bucket)
        .key(key)
        .send()
        .await
        .expect("head");
    assert_eq!(head.content_type(), Some("text/csv; charset=utf-8"));
    assert_eq!(
        head.content_disposition(),
        Some("attachment; filename=\"activity.csv\"")
    );
    let uploads = s3
        .list_multipart_uploads()
        .bucket(&bucket)
        .send()
        .await
        .expect("uploads listed");
    assert!(uploads.uploads().is_empty(), "completed, none left open");

    // Under the threshold: inline CSV, as always, and nothing written.
    let token = h.token("exporter-small");
    let response = h
        .get_exporting(&exports, &token, "/v1/activity?format=csv")
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(content_type(&response).starts_with("text/csv"));
    assert!(!response.headers().contains_key(crate::NEXT_CURSOR_HEADER));
    assert_eq!(body_text(&response), inline_export(&h, &small.client).await);
    assert!(
        keys(&s3, &bucket, "exports/exporter-small/")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn without_a_bucket_or_with_limit_a_large_export_is_paged_as_before() {
    let h = Harness::start().await;
    let (s3, bucket) = h.export_bucket().await;
    let account = h.open_account("exporter-paged", Policies::None).await;
    // More than a page of the read model (200 rows), so the first answer has a next cursor.
    h.seed_rows(&account.client, 210).await;
    let token = h.token("exporter-paged");

    let no_bucket = Exports::fixed(None, s3.clone(), THRESHOLD, PART_SIZE);
    let response = h
        .get_exporting(&no_bucket, &token, "/v1/activity?format=csv")
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(content_type(&response).starts_with("text/csv"));
    let cursor = response.headers()[crate::NEXT_CURSOR_HEADER]
        .to_str()
        .unwrap()
        .to_owned();
    let first = body_text(&response);
    let records = csv::Reader::from_reader(first.as_bytes()).records().count();
    assert_eq!(records, 200, "the first page, past the threshold");
    let response = h
        .get_exporting(
            &no_bucket,
            &token,
            &format!("/v1/activity?format=csv&cursor={cursor}"),
        )
        .await;
    let rest = body_text(&response);
    assert_eq!(
        csv::Reader::from_reader(rest.as_bytes()).records().count(),
        11
    );

    // With a bucket, an export paged by `limit` (or `cursor`) is still answered inline.
    let with_bucket = Exports::fixed(Some(bucket.clone()), s3.clone(), THRESHOLD, PART_SIZE);
    for query in [
        "/v1/activity?format=csv&limit=100".to_owned(),
        format!("/v1/activity?format=csv&cursor={cursor}"),
    ] {
        let response = h.get_exporting(&with_bucket, &token, &query).await;
        assert_eq!(response.status(), StatusCode::OK, "{query}");
        assert!(content_type(&response).starts_with("text/csv"), "{query}");
    }
    assert!(keys(&s3, &bucket, "exports/").await.is_empty());
}

#[tokio::test]
async fn a_failed_upload_is_aborted_and_answered_with_the_error_shape() {
    let h = Harness::start().await;
    let (s3, bucket) = h.export_bucket().await;
    let account = h.open_account("exporter-failed", Policies::None).await;
    h.seed_rows(&account.client, 60).await;
    // Parts of 1 KiB: S3 (and moto) refuse to complete an upload whose parts but the last are
    // under 5 MiB (EntityTooSmall), after every part was accepted.
    let exports = Exports::fixed(Some(bucket.clone()), s3.clone(), THRESHOLD, 1024);
    let token = h.token("exporter-failed");
    let response = h
        .get_exporting(&exports, &token, "/v1/activity?format=csv")
        .await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body: Value = serde_json::from_str(&body_text(&response)).expect("error shape");
    assert_eq!(body["error"]["code"], "internal", "{body}");
    let uploads = s3
        .list_multipart_uploads()
        .bucket(&bucket)
        .send()
        .await
        .expect("uploads listed");
    assert!(
        uploads.uploads().is_empty(),
        "the upload was aborted: {:?}",
        uploads.uploads()
    );
    assert!(keys(&s3, &bucket, "exports/").await.is_empty());
}
