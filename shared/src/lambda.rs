//! Glue between the handlers (plain `http` types, transport-neutral messages) and the Lambda runtime.

use std::future::Future;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use bytes::Bytes;

use crate::api::{HttpRequest, HttpResponse};
use crate::messages::InboundMessage;

/// A `lambda_http` request as the handlers take it (API Gateway has already decoded base64 bodies).
pub fn http_request(req: lambda_http::Request) -> HttpRequest {
    let (parts, body) = req.into_parts();
    let bytes = match body {
        lambda_http::Body::Empty => Bytes::new(),
        lambda_http::Body::Text(s) => Bytes::from(s),
        lambda_http::Body::Binary(b) => Bytes::from(b),
        _ => Bytes::new(),
    };
    http::Request::from_parts(parts, bytes)
}

/// A handler's response as `lambda_http` returns it (JSON is text, so API Gateway passes it through as is).
pub fn http_response(resp: HttpResponse) -> lambda_http::Response<lambda_http::Body> {
    let (parts, body) = resp.into_parts();
    let body = match String::from_utf8(body.to_vec()) {
        Ok(s) => lambda_http::Body::Text(s),
        Err(e) => lambda_http::Body::Binary(e.into_bytes()),
    };
    http::Response::from_parts(parts, body)
}

/// Runs the Lambda HTTP runtime, answering every request with `handle` (each request converted by
/// [`http_request`], each response by [`http_response`]).
pub async fn serve_http<F, Fut>(handle: F) -> Result<(), lambda_http::Error>
where
    F: Fn(HttpRequest) -> Fut,
    Fut: Future<Output = HttpResponse> + Send + 'static,
{
    lambda_http::run(lambda_http::service_fn(move |req: lambda_http::Request| {
        let answer = handle(http_request(req));
        async move { Ok::<_, lambda_http::Error>(http_response(answer.await)) }
    }))
    .await
}

/// The SQS records of an event as transport-neutral messages.
pub fn inbound(event: SqsEvent) -> Vec<InboundMessage> {
    event
        .records
        .into_iter()
        .map(|r| InboundMessage { id: r.message_id.unwrap_or_default(), body: r.body.unwrap_or_default() })
        .collect()
}

/// Partial batch failure: only the failed messages return to the queue.
pub fn batch_response(failed: Vec<String>) -> SqsBatchResponse {
    let mut resp = SqsBatchResponse::default();
    for id in failed {
        resp.add_failure(id);
    }
    resp
}
