//! The OpenAPI document's frame, and what the handlers' own annotations
//! leave out because it holds for whole classes of routes: every `/api`
//! operation needs the bearer token (401 without it), every operation on a
//! resource named in the path can find none (404), every query string can be
//! of the wrong shape (422), every JSON body can be
//! refused as not JSON (400), not declared JSON (415), too large (413) or of
//! the wrong shape (422), every one can find the database down (503), and
//! the public routes need no token at all. A
//! client generator or fuzzer reads every status the server can answer.

use utoipa::openapi::path::{Operation, ParameterIn, PathItem};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "inlet admin API", description = "Times are epoch milliseconds. Errors are {\"error\": {\"code\", \"message\", \"field\"}}."),
    modifiers(&BearerToken),
    components(schemas(super::updates::UpdatesChanges)),
    security(("bearer" = []))
)]
pub struct ApiDoc;

struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Statuses every operation with a JSON body can answer, and why.
const BODY_REFUSALS: [(&str, &str); 4] = [
    ("400", "the body is not JSON"),
    ("413", "the body is larger than the server takes"),
    ("415", "the body is not sent as Content-Type: application/json"),
    ("422", "the body or a parameter is of the wrong shape; `field` names it"),
];

/// Add to `document` what holds for classes of routes. `public` paths take
/// no token (health, metrics, webhooks); every other one does.
pub fn complete(document: &mut utoipa::openapi::OpenApi, public: &[String]) {
    for (path, item) in document.paths.paths.iter_mut() {
        let is_public = public.contains(path);
        for operation in operations(item) {
            if is_public {
                // An empty list overrides the document's bearer requirement.
                operation.security = Some(Vec::new());
            } else {
                // The document's bearer requirement applies.
                operation.security = None;
                add_refusal(operation, "401", "no token, or not a valid one: send Authorization: Bearer <token>");
                add_refusal(
                    operation,
                    "503",
                    "the database cannot be used right now (unreachable, or its disk full); try again after Retry-After",
                );
            }
            let takes = |place: ParameterIn| operation.parameters.iter().flatten().any(|p| p.parameter_in == place);
            let (names_a_resource, takes_query) = (takes(ParameterIn::Path), takes(ParameterIn::Query));
            if names_a_resource {
                add_refusal(operation, "404", "no such resource, or the id in the path is not an id");
            }
            if takes_query {
                add_refusal(operation, "422", "a query parameter is of the wrong shape; `field` names it");
            }
            let takes_json =
                operation.request_body.as_ref().is_some_and(|b| b.content.contains_key("application/json"));
            if takes_json {
                for (status, why) in BODY_REFUSALS {
                    add_refusal(operation, status, why);
                }
            }
        }
    }
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch].into_iter().flatten()
}

/// Document `status` with the error body, unless the handler already does.
fn add_refusal(operation: &mut Operation, status: &str, why: &str) {
    operation.responses.responses.entry(status.to_string()).or_insert_with(|| error_response(why));
}

fn error_response(why: &str) -> RefOr<Response> {
    let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
    RefOr::T(ResponseBuilder::new().description(why).content("application/json", content).build())
}
