//! JSON Schema for event payloads, through the `jsonschema` crate (drafts 2020-12, the
//! default, and 7 by `$schema`; `format` and `pattern` enforced; never a remote `$ref`).
//!
//! A schema is compiled once, when its type is registered, and refused there when it could
//! hurt the process: larger than `MAX_SCHEMA_BYTES` or deeper than `MAX_DEPTH`, with a
//! `$ref` that leaves the document, or with references that loop back to a schema without
//! descending into the payload (`{"not": {"$ref": "#"}}`: validation would recurse forever
//! and overflow the stack) or that multiply into too many evaluations. Patterns use the
//! linear-time `regex` engine, so no pattern can backtrack without bound. What remains is
//! bounded by the schema's size times the payload's; validation also runs off the actix
//! worker threads with a time limit (see `api::events`).

use std::collections::HashMap;

use serde_json::Value;

/// Enough to fix a payload in one round trip without one huge bad array flooding the answer.
const MAX_ISSUES: usize = 50;
const MAX_SCHEMA_BYTES: usize = 64 * 1024;
/// Nesting of the schema document itself.
const MAX_DEPTH: usize = 64;
/// Schemas evaluated against one payload location, through in-place applicators and refs.
const MAX_IN_PLACE_EVALUATIONS: u64 = 10_000;
/// Compiled size of one `pattern`.
const MAX_PATTERN_BYTES: usize = 1 << 20;

/// A failing keyword: where in the payload, and what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaIssue {
    pub path: Vec<Value>,
    pub message: String,
}

/// A compiled schema, shared by every publish of its type.
pub struct Schema {
    validator: jsonschema::Validator,
}

impl std::fmt::Debug for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Schema")
    }
}

impl Schema {
    /// Checks and compiles a schema; the error says what is wrong, for `issues`.
    pub fn compile(schema: &Value) -> Result<Self, String> {
        let bytes = serde_json::to_vec(schema).map_or(usize::MAX, |v| v.len());
        if bytes > MAX_SCHEMA_BYTES {
            return Err(format!("at most {MAX_SCHEMA_BYTES} bytes (this one has {bytes})"));
        }
        if depth(schema) > MAX_DEPTH {
            return Err(format!("nested at most {MAX_DEPTH} levels deep"));
        }
        if !schema.is_object() && !schema.is_boolean() {
            return Err("a schema must be an object or a boolean".into());
        }
        RefGraph::build(schema)?.check()?;
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .with_pattern_options(jsonschema::PatternOptions::regex().size_limit(MAX_PATTERN_BYTES))
            .build(schema)
            .map_err(|e| e.to_string())?;
        Ok(Self { validator })
    }

    /// Every failing keyword (the first `MAX_ISSUES`), located under `data`.
    pub fn validate(&self, instance: &Value) -> Vec<SchemaIssue> {
        self.validator
            .iter_errors(instance)
            .take(MAX_ISSUES)
            .map(|e| {
                let mut path = vec![Value::from("data")];
                path.extend(e.instance_path().into_iter().map(|segment| {
                    if let jsonschema::paths::LocationSegment::Index(i) = segment {
                        Value::from(i)
                    } else {
                        Value::from(segment.to_string())
                    }
                }));
                SchemaIssue { path, message: e.to_string() }
            })
            .collect()
    }
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Object(m) => 1 + m.values().map(depth).max().unwrap_or(0),
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Keywords whose schemas apply to the same payload location as their parent.
const IN_PLACE_ONE: &[&str] = &["not", "if", "then", "else"];
const IN_PLACE_MANY: &[&str] = &["allOf", "anyOf", "oneOf"];
const IN_PLACE_MAP: &[&str] = &["dependentSchemas", "dependencies"];
/// Keywords whose schemas apply to parts of the payload (one level further in).
const DESCENDING_ONE: &[&str] = &[
    "items",
    "additionalItems",
    "additionalProperties",
    "contains",
    "propertyNames",
    "unevaluatedItems",
    "unevaluatedProperties",
];
const DESCENDING_MANY: &[&str] = &["prefixItems", "items"];
const DESCENDING_MAP: &[&str] = &["properties", "patternProperties"];
/// Schemas kept for reference only.
const DEFINITIONS: &[&str] = &["$defs", "definitions"];

/// Every subschema by JSON pointer, with the schemas each one applies in place (refs
/// resolved), and the ones it applies further into the payload.
struct RefGraph {
    in_place: HashMap<String, Vec<String>>,
    /// Every `$ref`: where it stands, and the pointer it names.
    refs: Vec<(String, String)>,
}

impl RefGraph {
    fn build(root: &Value) -> Result<Self, String> {
        let mut graph = Self { in_place: HashMap::new(), refs: Vec::new() };
        graph.visit(root, root, String::new())?;
        // A reference must name a place that is a schema by its position (the top, under
        // $defs, properties, allOf…), where the walk above has seen it: a schema hidden
        // under an unknown keyword, `const` or `default` would escape the loop check.
        for (at, target) in &graph.refs {
            if !graph.in_place.contains_key(target) {
                return Err(format!(
                    "{}: $ref must point to a schema (the top, or one under $defs, properties, items, allOf…), \
                     not to {}",
                    show(at),
                    show(target)
                ));
            }
        }
        Ok(graph)
    }

    fn visit(&mut self, root: &Value, schema: &Value, at: String) -> Result<(), String> {
        let Value::Object(obj) = schema else {
            self.in_place.entry(at).or_default();
            return Ok(());
        };
        let mut in_place = Vec::new();
        for (key, v) in obj {
            let here = format!("{at}/{}", escape(key));
            match key.as_str() {
                "$ref" => {
                    let pointer = local_ref(root, v, &here)?;
                    self.refs.push((here, pointer.clone()));
                    in_place.push(pointer);
                }
                "$dynamicRef" | "$recursiveRef" => {
                    return Err(format!("{}: {key} is not supported; use $ref", show(&here)));
                }
                "$id" if !at.is_empty() => {
                    return Err(format!("{}: $id is allowed only at the top of the schema", show(&here)));
                }
                k => in_place.extend(self.visit_keyword(root, k, v, here)?),
            }
        }
        self.in_place.insert(at, in_place);
        Ok(())
    }

    /// Visits the schemas under keyword `k` (standing at `here`); answers the ones that
    /// apply in place.
    fn visit_keyword(
        &mut self,
        root: &Value,
        k: &str,
        v: &Value,
        here: String,
    ) -> Result<Vec<String>, String> {
        let mut in_place = Vec::new();
        match k {
            k if IN_PLACE_ONE.contains(&k) => {
                in_place.push(here.clone());
                self.visit(root, v, here)?;
            }
            k if IN_PLACE_MANY.contains(&k) => {
                for (i, sub) in v.as_array().into_iter().flatten().enumerate() {
                    in_place.push(format!("{here}/{i}"));
                    self.visit(root, sub, format!("{here}/{i}"))?;
                }
            }
            k if IN_PLACE_MAP.contains(&k) => {
                // `dependencies` (draft 7) also takes arrays of names: those are not schemas.
                for (name, sub) in v.as_object().into_iter().flatten().filter(|(_, s)| !s.is_array()) {
                    let p = format!("{here}/{}", escape(name));
                    in_place.push(p.clone());
                    self.visit(root, sub, p)?;
                }
            }
            k if DESCENDING_ONE.contains(&k) && (v.is_object() || v.is_boolean()) => {
                self.visit(root, v, here)?;
            }
            k if DESCENDING_MANY.contains(&k) || DEFINITIONS.contains(&k) || DESCENDING_MAP.contains(&k) => {
                self.visit_each(root, v, &here)?;
            }
            _ => {}
        }
        Ok(in_place)
    }

    /// Visits every schema of an array or an object of schemas.
    fn visit_each(&mut self, root: &Value, v: &Value, here: &str) -> Result<(), String> {
        match v {
            Value::Array(items) => {
                for (i, sub) in items.iter().enumerate() {
                    self.visit(root, sub, format!("{here}/{i}"))?;
                }
            }
            Value::Object(map) => {
                for (name, sub) in map {
                    self.visit(root, sub, format!("{here}/{}", escape(name)))?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// No loop through in-place applicators and refs alone, and no schema that fans out
    /// into more than `MAX_IN_PLACE_EVALUATIONS` in-place evaluations.
    fn check(&self) -> Result<(), String> {
        let mut cost: HashMap<&str, u64> = HashMap::new();
        let mut on_path: Vec<&str> = Vec::new();
        for start in self.in_place.keys() {
            self.cost(start, &mut cost, &mut on_path)?;
        }
        Ok(())
    }

    fn cost<'a>(
        &'a self,
        at: &'a str,
        done: &mut HashMap<&'a str, u64>,
        on_path: &mut Vec<&'a str>,
    ) -> Result<u64, String> {
        if let Some(c) = done.get(at) {
            return Ok(*c);
        }
        if on_path.contains(&at) {
            return Err(format!(
                "{}: its $ref loops back to itself without descending into the payload, so \
                 validating would never end",
                show(at)
            ));
        }
        // A pointer into the middle of a schema that was never visited as a schema of its own
        // (a $ref to "#/properties/a/type", say) applies nothing further.
        let Some(children) = self.in_place.get(at) else { return Ok(1) };
        on_path.push(at);
        let mut total: u64 = 1;
        for child in children {
            total = total.saturating_add(self.cost(child, done, on_path)?);
            if total > MAX_IN_PLACE_EVALUATIONS {
                return Err(format!(
                    "{}: its references multiply into more than {MAX_IN_PLACE_EVALUATIONS} \
                     evaluations of one value",
                    show(at)
                ));
            }
        }
        on_path.pop();
        done.insert(at, total);
        Ok(total)
    }
}

/// The JSON pointer a `$ref` (standing at `here`) names: local, and to a place that exists.
fn local_ref(root: &Value, v: &Value, here: &str) -> Result<String, String> {
    let target = v.as_str().ok_or_else(|| format!("{}: $ref must be a string", show(here)))?;
    let pointer = local_pointer(target).ok_or_else(|| {
        format!("{}: only references inside the schema (\"#/$defs/…\") are allowed", show(here))
    })?;
    if root.pointer(&pointer).is_none() {
        return Err(format!("{}: {target} does not exist in the schema", show(here)));
    }
    Ok(pointer)
}

/// `#` or `#/a/b` as a JSON pointer (percent-decoded); anything else leaves the document.
fn local_pointer(reference: &str) -> Option<String> {
    let fragment = reference.strip_prefix('#')?;
    if !(fragment.is_empty() || fragment.starts_with('/')) {
        return None;
    }
    percent_decode(fragment)
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn show(pointer: &str) -> String {
    format!("#{pointer}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn issues(schema: &Value, instance: Value) -> Vec<(Value, String)> {
        let compiled = Schema::compile(schema).expect("the schema compiles");
        compiled.validate(&instance).into_iter().map(|i| (Value::Array(i.path), i.message)).collect()
    }

    fn refused(schema: Value) -> String {
        Schema::compile(&schema).expect_err("refused")
    }

    #[test]
    fn a_ref_loop_through_not_is_refused_at_once() {
        // The shape that overflowed the stack: `not` nested ~120 deep around a `$ref` back
        // to the top. Refused for its depth already; shallower, for the loop.
        let nest = |levels: usize| {
            let mut schema = json!({"$ref": "#"});
            for _ in 0..levels {
                schema = json!({"not": schema});
            }
            schema
        };
        assert!(refused(nest(120)).contains("levels deep"));
        assert!(refused(nest(30)).contains("loops back"));
        assert!(refused(json!({"not": {"$ref": "#"}})).contains("loops back"));
        // As deep as allowed, without a loop: compiles and validates on an ordinary stack.
        // (An even number of `not`s: the same as `{"type": "string"}`.)
        let mut deep = json!({"type": "string"});
        for _ in 0..62 {
            deep = json!({"not": deep});
        }
        assert!(issues(&deep, json!("x")).is_empty());
        assert_eq!(issues(&deep, json!(1)).len(), 1);
        assert!(
            refused(json!({"$defs": {"a": {"anyOf": [{"$ref": "#/$defs/a"}]}}, "$ref": "#/$defs/a"}))
                .contains("loops back")
        );
        assert!(refused(json!({"allOf": [{"$ref": "#"}]})).contains("loops back"));
        // A loop hidden under a keyword that is not a schema position.
        assert!(
            refused(json!({"$ref": "#/x", "x": {"not": {"$ref": "#/x"}}})).contains("must point to a schema")
        );
        assert!(
            refused(json!({"$ref": "#/default", "default": {"not": {"$ref": "#"}}}))
                .contains("must point to a schema")
        );
    }

    #[test]
    fn recursion_through_the_payload_is_fine() {
        let tree = json!({
            "type": "object",
            "properties": {"children": {"type": "array", "items": {"$ref": "#"}}, "n": {"type": "integer"}}
        });
        assert!(issues(&tree, json!({"children": [{"children": [], "n": 1}]})).is_empty());
        let bad = issues(&tree, json!({"children": [{"n": "x"}]}));
        assert_eq!(bad.len(), 1, "{bad:?}");
        assert_eq!(bad[0].0, json!(["data", "children", 0, "n"]));
    }

    #[test]
    fn a_fan_out_of_references_is_refused() {
        let mut defs = serde_json::Map::new();
        defs.insert("d0".into(), json!({"type": "integer"}));
        for i in 1..20 {
            let prev = format!("#/$defs/d{}", i - 1);
            defs.insert(format!("d{i}"), json!({"allOf": [{"$ref": prev}, {"$ref": prev}]}));
        }
        let schema = json!({"$defs": defs, "$ref": "#/$defs/d19"});
        assert!(refused(schema).contains("multiply"));
    }

    #[test]
    fn remote_and_size_and_depth_are_refused() {
        assert!(refused(json!({"$ref": "https://example.com/s.json"})).contains("inside the schema"));
        assert!(refused(json!({"$ref": "#/$defs/missing"})).contains("does not exist"));
        let mut deep = json!({"type": "string"});
        for _ in 0..70 {
            deep = json!({"properties": {"a": deep}});
        }
        assert!(refused(deep).contains("levels deep"));
        let big: serde_json::Map<String, Value> =
            (0..5000).map(|i| (format!("property_{i}"), json!({"type": "string"}))).collect();
        assert!(refused(json!({"properties": big})).contains("bytes"));
        assert!(refused(json!({"type": "nonsense"})).len() > 3);
        assert!(refused(json!([1])).contains("object or a boolean"));
    }

    #[test]
    fn pattern_format_and_conditionals_are_enforced() {
        let schema = json!({
            "type": "object",
            "properties": {
                "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
                "email": {"type": "string", "format": "email"},
                "kind": {"enum": ["card", "bank"]},
                "iban": {"type": "string"}
            },
            "if": {"properties": {"kind": {"const": "bank"}}},
            "then": {"required": ["iban"]}
        });
        assert!(
            issues(&schema, json!({"currency": "EUR", "email": "a@b.example", "kind": "card"})).is_empty()
        );
        let bad = issues(&schema, json!({"currency": "euro", "email": "nope", "kind": "bank"}));
        let paths: Vec<&Value> = bad.iter().map(|(p, _)| p).collect();
        assert!(paths.contains(&&json!(["data", "currency"])), "{bad:?}");
        assert!(paths.contains(&&json!(["data", "email"])), "{bad:?}");
        assert!(paths.contains(&&json!(["data"])), "the missing iban: {bad:?}");
    }

    #[test]
    fn draft_7_by_its_schema_keyword() {
        let schema = json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "items": [{"type": "string"}, {"type": "integer"}],
            "additionalItems": false
        });
        assert!(issues(&schema, json!(["a", 1])).is_empty());
        assert_eq!(issues(&schema, json!(["a", 1, 2])).len(), 1);
    }

    #[test]
    fn at_most_fifty_issues() {
        let schema = json!({"type": "array", "items": {"type": "string"}});
        assert_eq!(issues(&schema, Value::Array(vec![json!(1); 500])).len(), MAX_ISSUES);
    }
}
