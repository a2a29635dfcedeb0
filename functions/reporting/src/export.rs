//! Whole CSV exports too large for one response (Lambda answers at most 6 MB): written to S3 by a
//! multipart upload and answered with a presigned link (docs/activity-read-model.md, "Large
//! exports").
//!
//! Nothing here runs at init: the bucket's name is read from `EXPORT_BUCKET` at the first whole
//! export, and the S3 client is built at the first export that goes past the inline threshold.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
use platform::App;
use platform::reporting::{self, activity};
use serde::Serialize;
use time::OffsetDateTime;

use crate::{Activity, CSV_MAX_BYTES, ExportError, bad_own_cursor};

/// The bytes of each multipart part but the last: S3's minimum part size (5 MiB; the last part may
/// be smaller). Parts of exactly this size keep the buffered CSV at most a part and a page.
pub const PART_SIZE: usize = 5 * 1024 * 1024;

/// How long a presigned link is valid.
pub const LINK_VALIDITY: Duration = Duration::from_secs(15 * 60);

/// The object's `Content-Type` and `Content-Disposition` (what the inline answer carries).
pub const CONTENT_TYPE: &str = "text/csv; charset=utf-8";
pub const CONTENT_DISPOSITION: &str = "attachment; filename=\"activity.csv\"";

/// The answer to a whole export written to S3.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportLink {
    /// A presigned `GET` of the CSV (the same bytes as an inline export of the same rows: header,
    /// CRLF line ends, newest first). Anyone holding it can download the file until `expiresAt`.
    pub url: String,
    /// When the link stops working (15 minutes after the answer); the object itself is deleted
    /// after a day.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "domain::schema::Rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Rows in the file (the header not counted).
    pub rows: u64,
    /// Size of the file in bytes.
    pub bytes: u64,
}

/// Where and how whole CSV exports go: cheap to make (nothing is read or built until an export
/// needs it), shared by the route's clones.
#[derive(Clone)]
pub struct Exports {
    inner: Arc<Inner>,
}

struct Inner {
    /// `None` inside: no bucket, exports are paged as before.
    bucket: OnceLock<Option<String>>,
    inline_max: usize,
    part_size: usize,
    s3: tokio::sync::OnceCell<aws_sdk_s3::Client>,
}

impl Exports {
    /// As deployed: the bucket in `EXPORT_BUCKET` (read at the first whole export), the S3 client
    /// from the process's SDK configuration (built at the first export past [`CSV_MAX_BYTES`]),
    /// parts of [`PART_SIZE`].
    pub fn from_env() -> Self {
        Self {
            inner: Arc::new(Inner {
                bucket: OnceLock::new(),
                inline_max: CSV_MAX_BYTES,
                part_size: PART_SIZE,
                s3: tokio::sync::OnceCell::new(),
            }),
        }
    }

    /// A fixed bucket (or none) and S3 client, an inline threshold and a part size (which real
    /// S3, and moto, hold to 5 MiB at least for every part but the last).
    pub fn fixed(
        bucket: Option<String>,
        s3: aws_sdk_s3::Client,
        inline_max: usize,
        part_size: usize,
    ) -> Self {
        assert!(part_size > 0, "parts hold bytes");
        Self {
            inner: Arc::new(Inner {
                bucket: OnceLock::from(bucket),
                inline_max,
                part_size,
                s3: tokio::sync::OnceCell::new_with(Some(s3)),
            }),
        }
    }

    /// The export bucket, if any (`EXPORT_BUCKET`, read once).
    pub fn bucket(&self) -> Option<&str> {
        self.inner
            .bucket
            .get_or_init(|| {
                std::env::var("EXPORT_BUCKET")
                    .ok()
                    .filter(|b| !b.trim().is_empty())
            })
            .as_deref()
    }

    /// The most CSV answered inline.
    pub fn inline_max(&self) -> usize {
        self.inner.inline_max
    }

    async fn s3(&self) -> &aws_sdk_s3::Client {
        self.inner
            .s3
            .get_or_init(|| async { s3_client(platform_config::aws::sdk_config().await) })
            .await
    }
}

/// An S3 client from `sdk` (its endpoint from `AWS_ENDPOINT_URL_S3` when set, then path-style,
/// as moto serves buckets).
pub fn s3_client(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let mut config = aws_sdk_s3::config::Builder::from(sdk);
    if std::env::var_os("AWS_ENDPOINT_URL_S3").is_some() {
        config = config.force_path_style(true);
    }
    aws_sdk_s3::Client::from_conf(config.build())
}

/// Appends `rows` to `buffer` as CSV records, through the export's one writer configuration.
fn write_rows(buffer: &mut Vec<u8>, rows: &[activity::ActivityItem]) -> Result<(), csv::Error> {
    let mut writer = crate::csv_writer(buffer);
    for row in rows {
        writer.write_record(row.csv_record())?;
    }
    writer.flush()?;
    Ok(())
}

/// Takes every full part of `part_size` bytes off the front of `buffer`, in order; what is left
/// (shorter than a part) stays for the next page or the last part.
pub fn take_full_parts(buffer: &mut Vec<u8>, part_size: usize) -> Vec<Vec<u8>> {
    let full = buffer.len() / part_size;
    let mut parts = Vec::with_capacity(full);
    for _ in 0..full {
        let rest = buffer.split_off(part_size);
        parts.push(std::mem::replace(buffer, rest));
    }
    parts
}

/// A whole export (`format=csv`, no `limit`, no `cursor`) with an export bucket: read page by
/// page into memory; answered inline if it ends under the threshold, else the same export goes on
/// into a multipart upload to `exports/<client>/<ulid>.csv` and the answer is its link.
pub async fn export_whole(
    app: &App,
    client: &domain::ClientId,
    exports: &Exports,
    bucket: &str,
) -> Result<Activity, ExportError> {
    let mut buffer = Vec::new();
    {
        let mut writer = crate::csv_writer(&mut buffer);
        writer.write_record(activity::CSV_HEADER)?;
        writer.flush().map_err(csv::Error::from)?;
    }
    let mut rows = 0u64;
    let mut cursor: Option<activity::Cursor> = None;
    loop {
        let page =
            reporting::activity(app, client, cursor.as_ref(), reporting::MAX_PAGE_SIZE).await?;
        write_rows(&mut buffer, &page.items)?;
        rows += page.items.len() as u64;
        if buffer.len() >= exports.inline_max() {
            let upload = Upload {
                app,
                client,
                exports,
                bucket,
            };
            return upload.finish(buffer, rows, page.next_cursor).await;
        }
        let Some(next) = page.next_cursor else {
            // Every field is a Rust string, so the bytes are UTF-8.
            let text = String::from_utf8_lossy(&buffer).into_owned();
            return Ok(Activity::Csv {
                text,
                next_cursor: None,
            });
        };
        cursor = Some(activity::Cursor::decode(&next).map_err(|_| bad_own_cursor())?);
    }
}

struct Upload<'a> {
    app: &'a App,
    client: &'a domain::ClientId,
    exports: &'a Exports,
    bucket: &'a str,
}

impl Upload<'_> {
    /// Uploads `buffer` and the rest of the export after `next`, then presigns the object.
    async fn finish(
        &self,
        buffer: Vec<u8>,
        rows: u64,
        next: Option<String>,
    ) -> Result<Activity, ExportError> {
        let s3 = self.exports.s3().await;
        let key = format!("exports/{}/{}.csv", self.client, ulid::Ulid::new());
        let created = s3
            .create_multipart_upload()
            .bucket(self.bucket)
            .key(&key)
            .content_type(CONTENT_TYPE)
            .content_disposition(CONTENT_DISPOSITION)
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .send()
            .await
            .map_err(|e| ExportError::storage("CreateMultipartUpload", e))?;
        let upload_id = created.upload_id.ok_or(ExportError::NoUploadId)?;
        match self
            .upload_rest(s3, &key, &upload_id, buffer, rows, next)
            .await
        {
            Ok((rows, bytes)) => {
                tracing::info!(%key, rows, bytes, "CSV export written to S3");
                let presigned = s3
                    .get_object()
                    .bucket(self.bucket)
                    .key(&key)
                    .presigned(
                        PresigningConfig::expires_in(LINK_VALIDITY)
                            .map_err(|e| ExportError::storage("presigning", e))?,
                    )
                    .await
                    .map_err(|e| ExportError::storage("presigning", e))?;
                Ok(Activity::Link(ExportLink {
                    url: presigned.uri().to_owned(),
                    expires_at: OffsetDateTime::now_utc() + LINK_VALIDITY,
                    rows,
                    bytes,
                }))
            }
            Err(error) => {
                if let Err(abort) = s3
                    .abort_multipart_upload()
                    .bucket(self.bucket)
                    .key(&key)
                    .upload_id(&upload_id)
                    .send()
                    .await
                {
                    // The bucket's lifecycle rule aborts it after a day anyway.
                    let abort = ExportError::storage("AbortMultipartUpload", abort);
                    tracing::warn!(%key, error = %abort, "multipart upload not aborted");
                }
                Err(error)
            }
        }
    }

    /// The parts: full ones as the export grows, then the rest as the last. Returns the rows and
    /// bytes written.
    async fn upload_rest(
        &self,
        s3: &aws_sdk_s3::Client,
        key: &str,
        upload_id: &str,
        mut buffer: Vec<u8>,
        mut rows: u64,
        mut next: Option<String>,
    ) -> Result<(u64, u64), ExportError> {
        let part_size = self.exports.inner.part_size;
        let mut completed = Vec::new();
        let mut bytes = 0u64;
        loop {
            for part in take_full_parts(&mut buffer, part_size) {
                bytes += part.len() as u64;
                let number = completed.len() + 1;
                completed.push(upload_part(s3, self.bucket, key, upload_id, number, part).await?);
            }
            let Some(after) = next.take() else { break };
            let cursor = activity::Cursor::decode(&after).map_err(|_| bad_own_cursor())?;
            let page = reporting::activity(
                self.app,
                self.client,
                Some(&cursor),
                reporting::MAX_PAGE_SIZE,
            )
            .await?;
            write_rows(&mut buffer, &page.items)?;
            rows += page.items.len() as u64;
            next = page.next_cursor;
        }
        if !buffer.is_empty() || completed.is_empty() {
            bytes += buffer.len() as u64;
            let last = std::mem::take(&mut buffer);
            let number = completed.len() + 1;
            completed.push(upload_part(s3, self.bucket, key, upload_id, number, last).await?);
        }
        s3.complete_multipart_upload()
            .bucket(self.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(completed))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| ExportError::storage("CompleteMultipartUpload", e))?;
        Ok((rows, bytes))
    }
}

/// Uploads `part` as part `number` (from 1).
async fn upload_part(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    upload_id: &str,
    number: usize,
    part: Vec<u8>,
) -> Result<CompletedPart, ExportError> {
    let number = i32::try_from(number)
        .ok()
        .filter(|n| *n <= 10_000)
        .ok_or(ExportError::TooManyParts)?;
    let uploaded = s3
        .upload_part()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .part_number(number)
        .checksum_algorithm(ChecksumAlgorithm::Crc32)
        .body(ByteStream::from(part))
        .send()
        .await
        .map_err(|e| ExportError::storage("UploadPart", e))?;
    Ok(CompletedPart::builder()
        .part_number(number)
        .set_e_tag(uploaded.e_tag)
        .set_checksum_crc32(uploaded.checksum_crc32)
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_parts_are_cut_in_order_and_the_rest_stays() {
        let mut buffer: Vec<u8> = (0..23u8).collect();
        let parts = take_full_parts(&mut buffer, 5);
        assert_eq!(parts.len(), 4);
        assert!(parts.iter().all(|p| p.len() == 5), "{parts:?}");
        assert_eq!(buffer, vec![20, 21, 22], "the rest, shorter than a part");
        let mut joined: Vec<u8> = parts.concat();
        joined.extend_from_slice(&buffer);
        assert_eq!(
            joined,
            (0..23u8).collect::<Vec<_>>(),
            "nothing lost or reordered"
        );

        // Under a part: nothing taken; exactly parts: nothing left.
        let mut short = vec![1u8, 2, 3];
        assert!(take_full_parts(&mut short, 5).is_empty());
        assert_eq!(short, vec![1, 2, 3]);
        let mut exact: Vec<u8> = (0..10u8).collect();
        assert_eq!(take_full_parts(&mut exact, 5).len(), 2);
        assert!(exact.is_empty());
    }
}
