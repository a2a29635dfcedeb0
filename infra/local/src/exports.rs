//! The export bucket on the stand-ins: a bucket in moto, created at start, where the reporting
//! function writes whole CSV exports past the inline threshold (as `EXPORT_BUCKET` names the
//! template's `ExportBucket` on AWS). The presigned links point at moto, which the browser reaches
//! on loopback.

use anyhow::Context;

/// A new bucket in moto and the reporting function's exports to it; `None` without
/// `AWS_ENDPOINT_URL_S3` (no S3 stand-in: exports are paged, as a deployment without a bucket).
pub async fn create() -> anyhow::Result<Option<reporting::Exports>> {
    if std::env::var_os("AWS_ENDPOINT_URL_S3").is_none() {
        return Ok(None);
    }
    let s3 = reporting::s3_client(platform_config::aws::sdk_config().await);
    let bucket = format!(
        "managed-accounts-local-exports-{}",
        ulid::Ulid::new().to_string().to_lowercase()
    );
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .with_context(|| format!("creating the export bucket {bucket}"))?;
    tracing::info!(%bucket, "export bucket created");
    Ok(Some(reporting::Exports::fixed(
        Some(bucket),
        s3,
        reporting::CSV_MAX_BYTES,
        reporting::PART_SIZE,
    )))
}

#[cfg(test)]
mod tests {
    /// The stack's start leaves a bucket the reporting function can write to (run through
    /// `cargo xtask exec`, which sets `AWS_ENDPOINT_URL_S3`).
    #[tokio::test]
    async fn the_export_bucket_is_created_in_moto() {
        let exports = super::create()
            .await
            .expect("bucket created")
            .expect("AWS_ENDPOINT_URL_S3 is set: run through `cargo xtask exec`");
        let bucket = exports.bucket().expect("a bucket").to_owned();
        assert!(
            bucket.starts_with("managed-accounts-local-exports-"),
            "{bucket}"
        );
        let s3 = reporting::s3_client(platform_config::aws::sdk_config().await);
        s3.head_bucket()
            .bucket(&bucket)
            .send()
            .await
            .expect("the bucket exists");
    }
}
