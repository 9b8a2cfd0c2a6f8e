//! A small JSON Schema validator (draft 2020-12 semantics, practical subset) for event payloads.
//!
//! Unknown keywords are ignored rather than rejected so schemas written for fuller validators still
//! register. `pattern` is deliberately unsupported and ignored: user-supplied regexes would need a
//! regex engine (a dependency) and a guard against catastrophic backtracking. `format` is ignored
//! because 2020-12 makes it an annotation unless a validator opts in.

use serde_json::{Number, Value};
use std::cmp::Ordering;

/// Enough to fix a payload in one round trip without one huge bad array flooding the response.
const MAX_ISSUES: usize = 50;
/// `$ref` is the only way a schema can loop back on itself, so bounding the chain bounds recursion.
const MAX_REF_DEPTH: usize = 32;
/// anyOf/oneOf over recursive `$ref`s can be exponential; a schema author must not be able to pin a
/// worker, so evaluation stops after this many schema visits and the payload is rejected.
const MAX_STEPS: usize = 1_000_000;
const TYPES: [&str; 7] = ["null", "boolean", "object", "array", "number", "integer", "string"];

#[derive(Debug, Clone, PartialEq)]
pub struct SchemaIssue {
    pub path: Vec<Value>,
    pub message: String,
}

/// Checks that a schema is one this validator understands (an object or boolean; known keywords
/// have the right types). Unknown keywords are ignored. A `$ref` must also resolve, so a dangling
/// reference is refused at registration rather than on every publish.
pub fn check_schema(schema: &Value) -> Result<(), String> {
    check(schema, schema, "#")
}

fn check(root: &Value, schema: &Value, at: &str) -> Result<(), String> {
    let obj = match schema {
        Value::Bool(_) => return Ok(()),
        Value::Object(obj) => obj,
        _ => return Err(format!("{at}: a schema must be an object or a boolean")),
    };
    let is_type_name = |v: &Value| v.as_str().is_some_and(|t| TYPES.contains(&t));
    for (key, v) in obj {
        let at = format!("{at}/{key}");
        let child = |name: &dyn std::fmt::Display, sub| check(root, sub, &format!("{at}/{name}"));
        let (ok, expected) = match key.as_str() {
            "type" => (
                v.as_array().map_or(is_type_name(v), |a| !a.is_empty() && a.iter().all(is_type_name)),
                "a type name or a non-empty array of type names",
            ),
            "enum" => (v.is_array(), "an array"),
            "required" => (v.as_array().is_some_and(|a| a.iter().all(Value::is_string)), "a string array"),
            "minItems" | "maxItems" | "minLength" | "maxLength" => (v.is_u64(), "a non-negative integer"),
            "minimum" | "maximum" | "exclusiveMinimum" | "exclusiveMaximum" => (v.is_number(), "a number"),
            "multipleOf" => (v.as_f64().is_some_and(|m| m > 0.0), "a number > 0"),
            "$ref" => (
                v.as_str().and_then(|r| resolve(root, r)).is_some(),
                "#/$defs/<name> or #/definitions/<name>, existing",
            ),
            "items" | "additionalProperties" | "not" => (check(root, v, &at).map(|()| true)?, ""),
            "properties" | "$defs" | "definitions" => (
                v.as_object().map(|m| m.iter().try_for_each(|(n, sub)| child(n, sub))).transpose()?.is_some(),
                "an object of schemas",
            ),
            "allOf" | "anyOf" | "oneOf" => (
                v.as_array()
                    .filter(|list| !list.is_empty())
                    .map(|list| list.iter().enumerate().try_for_each(|(i, sub)| child(&i, sub)))
                    .transpose()?
                    .is_some(),
                "a non-empty array of schemas",
            ),
            _ => (true, ""),
        };
        if !ok {
            return Err(format!("{at}: must be {expected}"));
        }
    }
    Ok(())
}

fn resolve<'a>(root: &'a Value, reference: &str) -> Option<&'a Value> {
    let (section, name) = reference.strip_prefix("#/")?.split_once('/')?;
    // A further '/' would be a deeper JSON pointer, which is outside the supported subset.
    let supported = matches!(section, "$defs" | "definitions") && !name.contains('/');
    root.get(section).filter(|_| supported)?.get(name.replace("~1", "/").replace("~0", "~"))
}

/// Validates `instance`; returns every failure (capped at 50), each with the JSON path of the
/// failing value (object keys as strings, array indexes as numbers), e.g. ["amount"] or
/// ["items", 2, "sku"].
pub fn validate(schema: &Value, instance: &Value) -> Vec<SchemaIssue> {
    let mut v =
        Validator { root: schema, path: Vec::new(), issues: Vec::new(), limit: MAX_ISSUES, steps: MAX_STEPS };
    v.walk(schema, instance, 0);
    if v.steps == 0 {
        // Running out inside an anyOf/oneOf/not probe leaves no visible issue, so add one rather
        // than accept a payload that was only partly checked.
        v.issues.truncate(MAX_ISSUES - 1);
        v.issues.push(SchemaIssue { path: Vec::new(), message: "is too complex to validate".into() });
    }
    v.issues
}

struct Validator<'a> {
    root: &'a Value,
    path: Vec<Value>,
    issues: Vec<SchemaIssue>,
    limit: usize,
    steps: usize,
}

impl Validator<'_> {
    fn fail(&mut self, message: impl Into<String>) {
        if self.issues.len() < self.limit {
            self.issues.push(SchemaIssue { path: self.path.clone(), message: message.into() });
        }
    }

    fn at(&mut self, segment: Value, schema: &Value, instance: &Value, depth: usize) {
        self.path.push(segment);
        self.walk(schema, instance, depth);
        self.path.pop();
    }

    /// anyOf/oneOf/not only need a yes/no, so the probe keeps at most one issue and stops there.
    fn matches(&mut self, schema: &Value, instance: &Value, depth: usize) -> bool {
        let mut probe =
            Validator { root: self.root, path: Vec::new(), issues: Vec::new(), limit: 1, steps: self.steps };
        probe.walk(schema, instance, depth);
        self.steps = probe.steps;
        probe.issues.is_empty()
    }

    fn walk(&mut self, schema: &Value, inst: &Value, depth: usize) {
        if self.issues.len() >= self.limit || self.steps == 0 {
            return;
        }
        self.steps -= 1;
        let obj = match schema {
            Value::Bool(false) => return self.fail("is not allowed"),
            Value::Object(obj) => obj,
            // `true`, or a malformed node: check_schema is the gatekeeper for the latter.
            _ => return,
        };
        if let Some(reference) = obj.get("$ref").and_then(Value::as_str) {
            match resolve(self.root, reference) {
                _ if depth >= MAX_REF_DEPTH => self.fail("exceeds the $ref depth limit"),
                Some(target) => self.walk(target, inst, depth + 1),
                None => self.fail(format!("uses an unresolvable $ref {reference:?}")),
            }
        }
        let names: Vec<&str> = match obj.get("type") {
            Some(Value::Array(names)) => names.iter().filter_map(Value::as_str).collect(),
            name => name.and_then(Value::as_str).into_iter().collect(),
        };
        if !names.is_empty() && !names.iter().any(|name| has_type(inst, name)) {
            let article = |n: &str| match n {
                "null" => "",
                "object" | "array" | "integer" => "an ",
                _ => "a ",
            };
            let described: Vec<String> = names.iter().map(|n| format!("{}{n}", article(n))).collect();
            self.fail(format!("must be {}", described.join(" or ")));
        }
        if let Some(allowed @ Value::Array(options)) = obj.get("enum")
            && !options.iter().any(|option| same(option, inst))
        {
            self.fail(format!("must be one of {allowed}"));
        }
        if let Some(expected) = obj.get("const")
            && !same(expected, inst)
        {
            self.fail(format!("must be equal to {expected}"));
        }
        // The spec counts string length in code points, so chars, not bytes.
        let sized = match inst {
            Value::String(s) => Some((s.chars().count(), ["minLength", "maxLength"], "be", "character")),
            Value::Array(items) => Some((items.len(), ["minItems", "maxItems"], "have", "item")),
            _ => None,
        };
        if let Some((len, [min_key, max_key], verb, noun)) = sized {
            let (len, limit) = (len as u64, |key| obj.get(key).and_then(Value::as_u64));
            if let Some(min) = limit(min_key).filter(|&min| len < min) {
                self.fail(format!("must {verb} at least {}", plural(min, noun)));
            }
            if let Some(max) = limit(max_key).filter(|&max| len > max) {
                self.fail(format!("must {verb} at most {}", plural(max, noun)));
            }
        }
        match inst {
            Value::Number(n) => {
                let bounds = [
                    ("minimum", ">=", Ordering::is_ge as fn(Ordering) -> bool),
                    ("maximum", "<=", Ordering::is_le),
                    ("exclusiveMinimum", ">", Ordering::is_gt),
                    ("exclusiveMaximum", "<", Ordering::is_lt),
                ];
                for (key, op, holds) in bounds {
                    if let Some(Value::Number(bound)) = obj.get(key)
                        && compare(n, bound).is_some_and(|order| !holds(order))
                    {
                        self.fail(format!("must be {op} {bound}"));
                    }
                }
                if let Some(Value::Number(m)) = obj.get("multipleOf")
                    && !is_multiple(n, m)
                {
                    self.fail(format!("must be a multiple of {m}"));
                }
            }
            Value::Array(items) => {
                if let Some(item_schema) = obj.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        self.at(i.into(), item_schema, item, depth);
                    }
                }
            }
            Value::Object(map) => {
                for name in obj.get("required").and_then(Value::as_array).into_iter().flatten() {
                    if let Some(name) = name.as_str().filter(|name| !map.contains_key(*name)) {
                        self.path.push(name.into());
                        self.fail("is required");
                        self.path.pop();
                    }
                }
                let properties = obj.get("properties").and_then(Value::as_object);
                for (key, value) in map {
                    if let Some(sub) = properties.and_then(|p| p.get(key)).or(obj.get("additionalProperties"))
                    {
                        self.at(key.as_str().into(), sub, value, depth);
                    }
                }
            }
            _ => {}
        }
        let list = |key| obj.get(key).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        for sub in list("allOf") {
            self.walk(sub, inst, depth);
        }
        let any = list("anyOf");
        if !any.is_empty() && !any.iter().any(|sub| self.matches(sub, inst, depth)) {
            self.fail("must match at least one anyOf schema");
        }
        let one = list("oneOf");
        let matched = one.iter().filter(|sub| self.matches(sub, inst, depth)).count();
        if !one.is_empty() && matched != 1 {
            self.fail(format!("must match exactly one oneOf schema (matched {matched})"));
        }
        if let Some(sub) = obj.get("not")
            && self.matches(sub, inst, depth)
        {
            self.fail("must not match the \"not\" schema");
        }
    }
}

fn has_type(value: &Value, name: &str) -> bool {
    match (name, value) {
        // 2020-12 defines integers by value, so 1.0 counts.
        ("integer", Value::Number(n)) => {
            n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        ("null", Value::Null) | ("boolean", Value::Bool(_)) | ("object", Value::Object(_)) => true,
        ("array", Value::Array(_)) | ("number", Value::Number(_)) | ("string", Value::String(_)) => true,
        _ => false,
    }
}

fn plural(n: u64, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

/// Exact for integers that fit 64 bits, where going through f64 would blur large values.
fn compare(x: &Number, y: &Number) -> Option<Ordering> {
    match (x.as_i64(), y.as_i64(), x.as_u64(), y.as_u64()) {
        (Some(p), Some(q), ..) => Some(p.cmp(&q)),
        (.., Some(p), Some(q)) => Some(p.cmp(&q)),
        _ => x.as_f64()?.partial_cmp(&y.as_f64()?),
    }
}

/// JSON Schema equality: numbers compare by value (1 == 1.0), which `Value`'s `==` does not do.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => compare(x, y) == Some(Ordering::Equal),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, p)| y.get(k).is_some_and(|q| same(p, q)))
        }
        _ => a == b,
    }
}

fn is_multiple(n: &Number, m: &Number) -> bool {
    if let (Some(x), Some(d)) = (n.as_i64(), m.as_i64())
        && d > 0
    {
        return x % d == 0;
    }
    let (Some(x), Some(d)) = (n.as_f64(), m.as_f64()) else { return true };
    // Decimal steps such as 0.01 are inexact in binary (0.3 / 0.1 = 2.9999999999999996), so a
    // quotient within rounding noise of a whole number counts.
    let q = x / d;
    d <= 0.0 || (q - q.round()).abs() <= 1e-9 * q.abs().max(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(schema: &Value, instance: Value) -> Vec<(Value, String)> {
        check_schema(schema).expect("test schemas are valid");
        validate(schema, &instance).into_iter().map(|i| (Value::Array(i.path), i.message)).collect()
    }
    fn issue(path: Value, message: &str) -> (Value, String) {
        (path, message.to_string())
    }

    #[test]
    fn each_keyword_passes_and_fails() {
        let one_of = json!({"oneOf": [{"type": "integer"}, {"type": "number"}]});
        let cases: Vec<(Value, Value, Vec<&str>)> = vec![
            (json!(true), json!({"a": 1}), vec![]),
            (json!(false), json!(null), vec!["is not allowed"]),
            (json!({"type": "string"}), json!("x"), vec![]),
            (json!({"type": "string"}), json!(5), vec!["must be a string"]),
            (json!({"type": ["string", "null"]}), json!(null), vec![]),
            (json!({"type": ["string", "null"]}), json!(1), vec!["must be a string or null"]),
            (json!({"type": "integer"}), json!(1.0), vec![]),
            (json!({"type": "integer"}), json!(1.5), vec!["must be an integer"]),
            (json!({"type": "number"}), json!(3), vec![]),
            (json!({"type": "object"}), json!([]), vec!["must be an object"]),
            (json!({"enum": ["usd", "eur"]}), json!("eur"), vec![]),
            (json!({"enum": ["usd", "eur"]}), json!("gbp"), vec![r#"must be one of ["usd","eur"]"#]),
            (json!({"const": {"v": [1]}}), json!({"v": [1.0]}), vec![]),
            (json!({"const": 2}), json!(3), vec!["must be equal to 2"]),
            (json!({"minLength": 3, "maxLength": 4}), json!("héé"), vec![]),
            (json!({"minLength": 3}), json!("ab"), vec!["must be at least 3 characters"]),
            (json!({"maxLength": 1}), json!("ab"), vec!["must be at most 1 character"]),
            (json!({"minLength": 3}), json!(1), vec![]),
            (json!({"minItems": 1, "maxItems": 2}), json!([1, 2]), vec![]),
            (json!({"minItems": 1}), json!([]), vec!["must have at least 1 item"]),
            (json!({"maxItems": 2}), json!([1, 2, 3]), vec!["must have at most 2 items"]),
            (json!({"minimum": 0, "maximum": 10}), json!(10.0), vec![]),
            (json!({"minimum": 0}), json!(-1), vec!["must be >= 0"]),
            (json!({"maximum": 10}), json!(10.5), vec!["must be <= 10"]),
            (json!({"exclusiveMinimum": 0, "exclusiveMaximum": 1.5}), json!(1), vec![]),
            (json!({"exclusiveMinimum": 0}), json!(0), vec!["must be > 0"]),
            (json!({"exclusiveMaximum": 1.5}), json!(1.5), vec!["must be < 1.5"]),
            (
                json!({"maximum": 9_007_199_254_740_992_u64}),
                json!(9_007_199_254_740_993_u64),
                vec!["must be <= 9007199254740992"],
            ),
            (json!({"multipleOf": 5}), json!(-15), vec![]),
            (json!({"multipleOf": 5}), json!(7), vec!["must be a multiple of 5"]),
            (json!({"multipleOf": 0.1}), json!(0.3), vec![]),
            (json!({"multipleOf": 0.01}), json!(19.99), vec![]),
            (json!({"multipleOf": 0.01}), json!(0.005), vec!["must be a multiple of 0.01"]),
            (json!({"pattern": "^a$", "format": "email"}), json!("b"), vec![]),
            (json!({"allOf": [{"minimum": 1}, {"multipleOf": 2}]}), json!(4), vec![]),
            (
                json!({"allOf": [{"minimum": 1}, {"multipleOf": 2}]}),
                json!(-1),
                vec!["must be >= 1", "must be a multiple of 2"],
            ),
            (json!({"anyOf": [{"type": "string"}, {"minimum": 0}]}), json!(3), vec![]),
            (
                json!({"anyOf": [{"type": "string"}, {"minimum": 0}]}),
                json!(-3),
                vec!["must match at least one anyOf schema"],
            ),
            (one_of.clone(), json!(1.5), vec![]),
            (one_of.clone(), json!(2), vec!["must match exactly one oneOf schema (matched 2)"]),
            (one_of, json!("x"), vec!["must match exactly one oneOf schema (matched 0)"]),
            (json!({"not": {"type": "null"}}), json!(0), vec![]),
            (json!({"not": {"type": "null"}}), json!(null), vec![r#"must not match the "not" schema"#]),
        ];
        for (schema, instance, expected) in cases {
            let messages: Vec<String> = run(&schema, instance.clone()).into_iter().map(|(_, m)| m).collect();
            assert_eq!(messages, expected, "schema {schema}, instance {instance}");
        }
    }

    #[test]
    fn object_keywords_report_property_paths() {
        let schema = json!({
            "properties": {"amount": {"type": "integer", "minimum": 0}, "currency": {"type": "string"}},
            "required": ["amount", "currency"],
            "additionalProperties": false
        });
        assert!(run(&schema, json!({"amount": 5, "currency": "usd"})).is_empty());
        let found = run(&schema, json!({"amount": -5, "note": 1}));
        let expected = [
            issue(json!(["currency"]), "is required"),
            issue(json!(["amount"]), "must be >= 0"),
            issue(json!(["note"]), "is not allowed"),
        ];
        assert_eq!(found, expected);
        let extra = json!({"properties": {"a": false}, "additionalProperties": {"type": "string"}});
        let found = run(&extra, json!({"a": 1, "b": 2, "c": "x"}));
        assert_eq!(found, [issue(json!(["a"]), "is not allowed"), issue(json!(["b"]), "must be a string")]);
    }

    #[test]
    fn nested_array_paths_and_issue_cap() {
        let sku = json!({"required": ["sku"], "properties": {"sku": {"type": "string"}}});
        let schema = json!({"properties": {"items": {"items": sku}}});
        let found = run(&schema, json!({"items": [{"sku": "a"}, {}, {"sku": 7}]}));
        let expected = [
            issue(json!(["items", 1, "sku"]), "is required"),
            issue(json!(["items", 2, "sku"]), "must be a string"),
        ];
        assert_eq!(found, expected);
        let issues = validate(&json!({"items": {"type": "string"}}), &json!((0..100).collect::<Vec<_>>()));
        assert_eq!((issues.len(), &issues[49].path), (50, &vec![json!(49)]));
    }

    #[test]
    fn local_refs_and_recursion_limit() {
        let schema = json!({
            "$defs": {"money": {"required": ["currency"]}},
            "definitions": {"node": {"properties": {"kids": {"items": {"$ref": "#/definitions/node"}}, "id": {"type": "integer"}}}},
            "properties": {"price": {"$ref": "#/$defs/money"}, "tree": {"$ref": "#/definitions/node"}}
        });
        let found = run(&schema, json!({"price": {}, "tree": {"kids": [{"kids": [{"id": "x"}]}]}}));
        let deep = json!(["tree", "kids", 0, "kids", 0, "id"]);
        assert_eq!(
            found,
            [issue(json!(["price", "currency"]), "is required"), issue(deep, "must be an integer")]
        );
        let cycle = json!({"$defs": {"a": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"});
        assert_eq!(run(&cycle, json!(1)), [issue(json!([]), "exceeds the $ref depth limit")]);
    }

    #[test]
    fn exponential_schemas_are_cut_off() {
        let mut defs: serde_json::Map<String, Value> = (0..30)
            .map(|i| (format!("d{i}"), json!({"$ref": format!("#/$defs/d{}", i + 1)})))
            .map(|(name, next)| (name, json!({"anyOf": [next, next]})))
            .collect();
        defs.insert("d30".into(), json!(false));
        let issues = validate(&json!({"$defs": defs, "$ref": "#/$defs/d0"}), &json!(1));
        assert_eq!(issues.last().map(|i| i.message.as_str()), Some("is too complex to validate"));
    }

    #[test]
    fn check_schema_rejects_malformed_keywords() {
        let good = json!({"type": "object", "properties": {"a": {"type": ["string", "null"]}}, "x-note": 5});
        assert_eq!(check_schema(&good), Ok(()));
        let bad = [
            json!(5),
            json!({"type": 5}),
            json!({"type": "text"}),
            json!({"required": "x"}),
            json!({"minLength": -1}),
            json!({"multipleOf": 0}),
            json!({"items": [{}]}),
            json!({"anyOf": []}),
            json!({"$ref": "#/$defs/missing"}),
            json!({"$ref": "https://example.com/s.json"}),
        ];
        for schema in bad {
            assert!(check_schema(&schema).is_err(), "{schema} should be rejected");
        }
        let nested = check_schema(&json!({"properties": {"a": {"type": 5}}}));
        assert_eq!(
            nested,
            Err("#/properties/a/type: must be a type name or a non-empty array of type names".into())
        );
    }
}
