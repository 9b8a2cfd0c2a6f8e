//! The OpenAPI 3 description, generated from the route table.

use actix_web::HttpResponse;
use serde_json::{Map, Value, json};

use super::{Access, ROUTES};

pub async fn serve() -> HttpResponse {
    HttpResponse::Ok().json(document())
}

pub fn document() -> Value {
    let mut paths = Map::new();
    for spec in ROUTES {
        let params: Vec<Value> = path_params(spec.path)
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let security = match spec.access {
            Access::Public | Access::Signature => json!([]),
            Access::ApiKey => json!([{"apiKey": []}]),
            Access::Admin => json!([{"adminToken": []}]),
        };
        let mut responses = Map::new();
        responses.insert(spec.success.to_string(), json!({"description": "Success"}));
        responses.insert(
            "default".into(),
            json!({
                "description": "Error",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
            }),
        );
        let mut op = json!({
            "summary": spec.summary,
            "operationId": operation_id(spec.method, spec.path),
            "security": security,
            "responses": responses,
        });
        if !params.is_empty() {
            op["parameters"] = Value::Array(params);
        }
        if matches!(spec.method, "POST" | "PATCH" | "PUT") {
            op["requestBody"] =
                json!({"required": false, "content": {"application/json": {"schema": {"type": "object"}}}});
        }
        let entry = paths.entry(spec.path.to_string()).or_insert_with(|| json!({}));
        entry[spec.method.to_ascii_lowercase()] = op;
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": "herald", "version": env!("CARGO_PKG_VERSION"), "description": env!("CARGO_PKG_DESCRIPTION")},
        "paths": paths,
        "components": {
            "securitySchemes": {
                "apiKey": {"type": "http", "scheme": "bearer", "description": "An organisation's API key"},
                "adminToken": {"type": "http", "scheme": "bearer", "description": "The admin_token setting"}
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string", "enum": [
                            "VALIDATION_ERROR", "UNAUTHORIZED", "FORBIDDEN", "NOT_FOUND", "METHOD_NOT_ALLOWED",
                            "CONFLICT", "PAYLOAD_TOO_LARGE", "UNSUPPORTED_MEDIA_TYPE", "RATE_LIMITED",
                            "INTERNAL_ERROR", "UNAVAILABLE"]},
                        "message": {"type": "string"},
                        "issues": {"type": "array", "items": {"type": "object", "properties": {
                            "path": {"type": "array", "items": {}},
                            "message": {"type": "string"}
                        }}}
                    }
                }
            }
        }
    })
}

/// The names of a path's parameters: `{id}`, or one within a segment (`{name}.js`).
fn path_params(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter_map(|seg| seg.split_once('{')?.1.split_once('}').map(|(name, _)| name))
}

fn operation_id(method: &str, path: &str) -> String {
    let mut id = method.to_ascii_lowercase();
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        id.push('_');
        id.extend(
            seg.chars()
                .filter(|c| !matches!(c, '{' | '}'))
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }),
        );
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_described() {
        let doc = document();
        for spec in ROUTES {
            let op = &doc["paths"][spec.path][spec.method.to_ascii_lowercase()];
            assert!(op.is_object(), "{} {} missing", spec.method, spec.path);
        }
        assert_eq!(operation_id("POST", "/v1/orgs/{org_id}/api-keys"), "post_v1_orgs_org_id_api_keys");
        assert_eq!(operation_id("GET", "/dashboard/{name}.js"), "get_dashboard_name_js");
        assert_eq!(path_params("/v1/endpoints/{id}/deliveries").collect::<Vec<_>>(), ["id"]);
        assert_eq!(path_params("/dashboard/{name}.js").collect::<Vec<_>>(), ["name"]);
    }
}
