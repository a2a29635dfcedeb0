//! Placeholder while the handler is written.
use lambda_http::{Body, Request, Response};

pub const ROUTES: &[platform::http::Route] = &[];

pub async fn handle(_app: &platform::App, req: Request) -> Response<Body> {
    platform::http::serve(req, |_req, _id| async {
        Err(platform::http::ApiError::not_found("no such route"))
    })
    .await
}
