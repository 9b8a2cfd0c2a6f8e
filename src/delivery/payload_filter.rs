//! Payload filters: a condition on an event's envelope (`{"id", "type", "created_at",
//! "correlation_id"?, "data"}`) in the MongoDB-style syntax other brokers' users know
//! (Convoy uses it too), compiled once and evaluated on every publish.
//!
//! `{"data.amount": {"$gte": 100}, "data.currency": "EUR"}`: every key of an object must
//! hold. A key is a dotted path (a numeric segment indexes an array) or `$and`/`$or` (a
//! list of filters) or `$not` (a filter). A value is either a literal (equality) or an
//! object of operators: `$eq`, `$neq`, `$gt`, `$gte`, `$lt`, `$lte`, `$in`, `$nin`,
//! `$exists`, `$regex`.
//!
//! A path that is missing satisfies only `$neq`, `$nin` and `$exists: false`. Numbers
//! compare as numbers and strings as strings; an order between other kinds (or a number
//! and a string) never holds.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;

/// Bounds on what one filter may ask, so a filter costs little to evaluate.
const MAX_CONDITIONS: usize = 64;
const MAX_DEPTH: usize = 8;
const MAX_IN: usize = 256;
const MAX_PATTERN: usize = 256;
/// `$regex` conditions in one filter: each is the costly part of a filter in memory.
const MAX_PATTERNS: usize = 4;
/// Compiled size of a `$regex`, and of its lazy DFA's cache (the `regex` crate runs in
/// linear time; these bound the memory a filter keeps).
const REGEX_SIZE: usize = 32 * 1024;

#[derive(Debug)]
pub struct PayloadFilter(Cond);

/// Why a filter was refused: where in it (`["data.amount", "$gt"]`), and what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterError {
    pub path: Vec<String>,
    pub message: String,
}

#[derive(Debug)]
enum Cond {
    All(Vec<Cond>),
    Any(Vec<Cond>),
    Not(Box<Cond>),
    Field { path: String, segments: Vec<String>, op: Op },
}

#[derive(Debug)]
enum Op {
    Eq(Value),
    Neq(Value),
    Order(Ordering, bool, Value),
    In(Vec<Value>),
    Nin(Vec<Value>),
    Exists(bool),
    Regex(regex::Regex),
}

impl PayloadFilter {
    pub fn compile(filter: &Value) -> Result<Self, FilterError> {
        let mut budget = MAX_CONDITIONS;
        let cond = compile_object(filter, &mut Vec::new(), 0, &mut budget)?;
        if cond.patterns() > MAX_PATTERNS {
            return Err(refuse(&[], format!("a filter holds at most {MAX_PATTERNS} $regex conditions")));
        }
        Ok(Self(cond))
    }

    pub fn matches(&self, envelope: &Value) -> bool {
        self.0.holds(envelope)
    }

    /// The first condition that does not hold, as people read it (`data.amount $gt 100`),
    /// or `None` when the filter matches.
    pub fn explain(&self, envelope: &Value) -> Option<String> {
        self.0.first_failure(envelope)
    }
}

fn refuse(path: &[String], message: impl Into<String>) -> FilterError {
    FilterError { path: path.to_vec(), message: message.into() }
}

fn compile_object(
    value: &Value,
    at: &mut Vec<String>,
    depth: usize,
    budget: &mut usize,
) -> Result<Cond, FilterError> {
    if depth > MAX_DEPTH {
        return Err(refuse(at, format!("nested more than {MAX_DEPTH} deep")));
    }
    let Value::Object(map) = value else {
        return Err(refuse(at, "must be an object of conditions"));
    };
    let mut all = Vec::new();
    for (key, inner) in map {
        at.push(key.clone());
        all.push(compile_key(key, inner, at, depth, budget)?);
        at.pop();
    }
    Ok(if all.len() == 1 { all.pop().expect("one") } else { Cond::All(all) })
}

fn compile_key(
    key: &str,
    value: &Value,
    at: &mut Vec<String>,
    depth: usize,
    budget: &mut usize,
) -> Result<Cond, FilterError> {
    match key {
        "$and" | "$or" => {
            let Value::Array(items) = value else {
                return Err(refuse(at, format!("{key} takes a list of filters")));
            };
            if items.is_empty() {
                return Err(refuse(at, format!("{key} takes at least one filter")));
            }
            let mut conds = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                at.push(i.to_string());
                conds.push(compile_object(item, at, depth + 1, budget)?);
                at.pop();
            }
            Ok(if key == "$and" { Cond::All(conds) } else { Cond::Any(conds) })
        }
        "$not" => Ok(Cond::Not(Box::new(compile_object(value, at, depth + 1, budget)?))),
        k if k.starts_with('$') => {
            Err(refuse(at, format!("{k} is not an operator here (use $and, $or, $not)")))
        }
        path => compile_field(path, value, at, budget),
    }
}

fn compile_field(
    path: &str,
    value: &Value,
    at: &mut Vec<String>,
    budget: &mut usize,
) -> Result<Cond, FilterError> {
    let segments: Vec<String> = path.split('.').map(str::to_string).collect();
    if path.len() > 256 || segments.iter().any(String::is_empty) {
        return Err(refuse(at, "a path is dotted names, like data.amount"));
    }
    let ops = match value {
        Value::Object(map) if map.keys().any(|k| k.starts_with('$')) => {
            if !map.keys().all(|k| k.starts_with('$')) {
                return Err(refuse(at, "mixes operators and fields"));
            }
            let mut ops = Vec::with_capacity(map.len());
            for (name, operand) in map {
                at.push(name.clone());
                ops.push(compile_op(name, operand, at)?);
                at.pop();
            }
            ops
        }
        literal => vec![Op::Eq(literal.clone())],
    };
    let mut conds = Vec::with_capacity(ops.len());
    for op in ops {
        if *budget == 0 {
            return Err(refuse(at, format!("a filter holds at most {MAX_CONDITIONS} conditions")));
        }
        *budget -= 1;
        conds.push(Cond::Field { path: path.to_string(), segments: segments.clone(), op });
    }
    Ok(if conds.len() == 1 { conds.pop().expect("one") } else { Cond::All(conds) })
}

fn compile_op(name: &str, operand: &Value, at: &[String]) -> Result<Op, FilterError> {
    let list = |operand: &Value| match operand {
        Value::Array(items) if items.len() <= MAX_IN => Ok(items.clone()),
        Value::Array(_) => Err(refuse(at, format!("at most {MAX_IN} values"))),
        _ => Err(refuse(at, format!("{name} takes a list of values"))),
    };
    let ordered = |operand: &Value| match operand {
        Value::Number(_) | Value::String(_) => Ok(operand.clone()),
        _ => Err(refuse(at, format!("{name} compares with a number or a string"))),
    };
    Ok(match name {
        "$eq" => Op::Eq(operand.clone()),
        "$neq" | "$ne" => Op::Neq(operand.clone()),
        "$gt" => Op::Order(Ordering::Greater, false, ordered(operand)?),
        "$gte" => Op::Order(Ordering::Greater, true, ordered(operand)?),
        "$lt" => Op::Order(Ordering::Less, false, ordered(operand)?),
        "$lte" => Op::Order(Ordering::Less, true, ordered(operand)?),
        "$in" => Op::In(list(operand)?),
        "$nin" => Op::Nin(list(operand)?),
        "$exists" => match operand {
            Value::Bool(b) => Op::Exists(*b),
            _ => return Err(refuse(at, "$exists takes true or false")),
        },
        "$regex" => {
            let Value::String(pattern) = operand else {
                return Err(refuse(at, "$regex takes a pattern string"));
            };
            if pattern.len() > MAX_PATTERN {
                return Err(refuse(at, format!("a pattern has at most {MAX_PATTERN} characters")));
            }
            let re = regex::RegexBuilder::new(pattern)
                .size_limit(REGEX_SIZE)
                .dfa_size_limit(REGEX_SIZE)
                .build()
                .map_err(|e| refuse(at, format!("not a pattern: {}", first_line(&e.to_string()))))?;
            Op::Regex(re)
        }
        other => {
            return Err(refuse(
                at,
                format!("{other} is not an operator ($eq $neq $gt $gte $lt $lte $in $nin $exists $regex)"),
            ));
        }
    })
}

fn first_line(s: &str) -> &str {
    s.lines().find(|l| !l.trim().is_empty()).unwrap_or(s).trim()
}

fn lookup<'a>(envelope: &'a Value, segments: &[String]) -> Option<&'a Value> {
    segments.iter().try_fold(envelope, |v, seg| match v {
        Value::Object(map) => map.get(seg),
        Value::Array(items) => seg.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

/// JSON equality, with numbers equal by value (`1` is `1.0`).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => compare_numbers(x, y) == Some(Ordering::Equal),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fn compare_numbers(x: &serde_json::Number, y: &serde_json::Number) -> Option<Ordering> {
    match (x.as_i64(), y.as_i64()) {
        (Some(a), Some(b)) => Some(a.cmp(&b)),
        _ => x.as_f64()?.partial_cmp(&y.as_f64()?),
    }
}

fn order(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => compare_numbers(x, y),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

impl Op {
    fn holds(&self, found: Option<&Value>) -> bool {
        match (self, found) {
            (Op::Exists(want), found) => found.is_some() == *want,
            (Op::Neq(v), found) => !found.is_some_and(|f| same(f, v)),
            (Op::Nin(vs), found) => !found.is_some_and(|f| vs.iter().any(|v| same(f, v))),
            (_, None) => false,
            (Op::Eq(v), Some(f)) => same(f, v),
            (Op::In(vs), Some(f)) => vs.iter().any(|v| same(f, v)),
            (Op::Order(want, or_equal, v), Some(f)) => {
                order(f, v).is_some_and(|o| o == *want || (*or_equal && o == Ordering::Equal))
            }
            (Op::Regex(re), Some(Value::String(s))) => re.is_match(s),
            (Op::Regex(_), Some(_)) => false,
        }
    }

    fn describe(&self) -> String {
        match self {
            Op::Eq(v) => format!("$eq {v}"),
            Op::Neq(v) => format!("$neq {v}"),
            Op::Order(Ordering::Greater, false, v) => format!("$gt {v}"),
            Op::Order(Ordering::Greater, true, v) => format!("$gte {v}"),
            Op::Order(_, false, v) => format!("$lt {v}"),
            Op::Order(_, true, v) => format!("$lte {v}"),
            Op::In(vs) => format!("$in {}", Value::Array(vs.clone())),
            Op::Nin(vs) => format!("$nin {}", Value::Array(vs.clone())),
            Op::Exists(b) => format!("$exists {b}"),
            Op::Regex(re) => format!("$regex {:?}", re.as_str()),
        }
    }
}

impl Cond {
    fn patterns(&self) -> usize {
        match self {
            Cond::All(conds) | Cond::Any(conds) => conds.iter().map(Cond::patterns).sum(),
            Cond::Not(cond) => cond.patterns(),
            Cond::Field { op: Op::Regex(_), .. } => 1,
            Cond::Field { .. } => 0,
        }
    }

    fn holds(&self, envelope: &Value) -> bool {
        match self {
            Cond::All(conds) => conds.iter().all(|c| c.holds(envelope)),
            Cond::Any(conds) => conds.iter().any(|c| c.holds(envelope)),
            Cond::Not(cond) => !cond.holds(envelope),
            Cond::Field { segments, op, .. } => op.holds(lookup(envelope, segments)),
        }
    }

    fn first_failure(&self, envelope: &Value) -> Option<String> {
        match self {
            Cond::All(conds) => conds.iter().find_map(|c| c.first_failure(envelope)),
            Cond::Any(conds) => {
                let failures: Vec<String> = conds.iter().filter_map(|c| c.first_failure(envelope)).collect();
                (failures.len() == conds.len()).then(|| format!("none of: {}", failures.join("; ")))
            }
            Cond::Not(cond) => cond.holds(envelope).then(|| "$not: its filter matches".to_string()),
            Cond::Field { path, segments, op } => {
                let found = lookup(envelope, segments);
                (!op.holds(found)).then(|| match found {
                    Some(v) => format!("{path} {} (it is {v})", op.describe()),
                    None => format!("{path} {} (it is missing)", op.describe()),
                })
            }
        }
    }
}

/// Compiled filters by their text: an endpoint's filter is compiled once, not per publish.
#[derive(Default)]
pub struct FilterCache(Mutex<HashMap<String, Arc<PayloadFilter>>>);

/// The process's compiled filters.
pub fn compiled(text: &str) -> Option<Arc<PayloadFilter>> {
    static CACHE: std::sync::LazyLock<FilterCache> = std::sync::LazyLock::new(FilterCache::default);
    CACHE.get(text)
}

/// Distinct filters kept compiled at most (then the cache starts over): with at most
/// `MAX_PATTERNS` bounded patterns each, a few hundred KiB per filter at worst.
const CACHE_MAX: usize = 1_000;

impl FilterCache {
    /// The compiled filter of a stored text; `None` if it no longer compiles (it was
    /// checked when stored).
    pub fn get(&self, text: &str) -> Option<Arc<PayloadFilter>> {
        if let Some(f) = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(text) {
            return Some(f.clone());
        }
        // Compiled outside the lock: other publishes are not kept waiting on it.
        let filter = Arc::new(PayloadFilter::compile(&serde_json::from_str(text).ok()?).ok()?);
        let mut cache = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() >= CACHE_MAX {
            cache.clear();
        }
        cache.insert(text.to_string(), filter.clone());
        Some(filter)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn envelope() -> Value {
        json!({
            "id": "evt_1",
            "type": "order.created",
            "created_at": "2026-12-01T00:00:00Z",
            "data": {
                "amount": 250,
                "price": 9.5,
                "currency": "EUR",
                "customer": {"tier": "gold", "email": "ana@example.com"},
                "items": [{"sku": "A-1"}, {"sku": "B-2"}],
                "gift": false,
                "note": null
            }
        })
    }

    fn check(filter: Value) -> bool {
        PayloadFilter::compile(&filter).unwrap_or_else(|e| panic!("{filter}: {e:?}")).matches(&envelope())
    }

    #[test]
    fn the_table_of_cases() {
        let cases = [
            // Equality, implicit and explicit, on every kind of value.
            (json!({"data.currency": "EUR"}), true),
            (json!({"data.currency": "USD"}), false),
            (json!({"data.amount": {"$eq": 250.0}}), true),
            (json!({"data.gift": false}), true),
            (json!({"data.note": null}), true),
            (json!({"data.customer": {"tier": "gold", "email": "ana@example.com"}}), true),
            (json!({"type": "order.created", "data.amount": 250}), true),
            (json!({"data.items.1.sku": "B-2"}), true),
            (json!({"data.items": [{"sku": "A-1"}, {"sku": "B-2"}]}), true),
            // Order: numbers as numbers, strings as strings, never across kinds.
            (json!({"data.amount": {"$gt": 100, "$lte": 250}}), true),
            (json!({"data.amount": {"$gt": 250}}), false),
            (json!({"data.price": {"$lt": 10}}), true),
            (json!({"data.currency": {"$gte": "EUR"}}), true),
            (json!({"data.amount": {"$gt": "100"}}), false),
            (json!({"data.currency": {"$lt": 5}}), false),
            (json!({"data.customer": {"$gt": 1}}), false),
            // Lists and existence.
            (json!({"data.currency": {"$in": ["USD", "EUR"]}}), true),
            (json!({"data.currency": {"$nin": ["USD", "EUR"]}}), false),
            (json!({"data.amount": {"$in": [250.0]}}), true),
            (json!({"data.note": {"$exists": true}}), true),
            (json!({"data.coupon": {"$exists": false}}), true),
            // A missing path satisfies only $neq, $nin and $exists: false.
            (json!({"data.coupon": "X"}), false),
            (json!({"data.coupon": {"$neq": "X"}}), true),
            (json!({"data.coupon": {"$nin": ["X"]}}), true),
            (json!({"data.coupon": {"$gt": 0}}), false),
            (json!({"data.coupon": {"$in": [null]}}), false),
            (json!({"data.items.7.sku": {"$exists": true}}), false),
            (json!({"data.amount.value": 1}), false),
            // Patterns apply to strings only.
            (json!({"data.customer.email": {"$regex": "@example\\.com$"}}), true),
            (json!({"data.amount": {"$regex": "250"}}), false),
            // Combinations.
            (json!({"$or": [{"data.currency": "USD"}, {"data.amount": {"$gte": 200}}]}), true),
            (json!({"$and": [{"data.currency": "EUR"}, {"data.gift": true}]}), false),
            (json!({"$not": {"data.customer.tier": "gold"}}), false),
            (json!({"data.amount": {"$neq": 250}}), false),
            (json!({}), true),
        ];
        for (filter, expected) in cases {
            assert_eq!(check(filter.clone()), expected, "{filter}");
        }
    }

    #[test]
    fn bad_filters_are_refused_with_where_and_why() {
        let refused = |filter: Value| PayloadFilter::compile(&filter).unwrap_err();
        let e = refused(json!({"data.amount": {"$gt": [1]}}));
        assert_eq!(e.path, ["data.amount", "$gt"]);
        let e = refused(json!({"data.amount": {"$near": 1}}));
        assert!(e.message.contains("not an operator"), "{e:?}");
        assert_eq!(refused(json!({"$or": {}})).path, ["$or"]);
        assert_eq!(refused(json!({"$or": [{"a": {"$regex": "("}}]})).path, ["$or", "0", "a", "$regex"]);
        assert!(refused(json!({"a": {"$eq": 1, "b": 2}})).message.contains("mixes"));
        assert!(refused(json!({"a..b": 1})).message.contains("dotted"));
        assert!(refused(json!([1])).message.contains("object"));
        assert!(refused(json!({"a": {"$regex": "x{1000}{1000}"}})).message.contains("not a pattern"));
        let five: serde_json::Map<String, Value> =
            (0..5).map(|i| (format!("f{i}"), json!({"$regex": "a"}))).collect();
        assert!(refused(Value::Object(five)).message.contains("at most 4 $regex"));
        let many: serde_json::Map<String, Value> = (0..65).map(|i| (format!("f{i}"), json!(1))).collect();
        assert!(refused(Value::Object(many)).message.contains("at most 64"));
        let mut deep = json!({"a": 1});
        for _ in 0..10 {
            deep = json!({"$not": deep});
        }
        assert!(refused(deep).message.contains("deep"));
    }

    #[test]
    fn explain_names_the_condition_that_failed() {
        let f =
            PayloadFilter::compile(&json!({"data.currency": "EUR", "data.amount": {"$gt": 1000}})).unwrap();
        assert_eq!(f.explain(&envelope()).unwrap(), "data.amount $gt 1000 (it is 250)");
        let f = PayloadFilter::compile(&json!({"data.coupon": "X"})).unwrap();
        assert_eq!(f.explain(&envelope()).unwrap(), "data.coupon $eq \"X\" (it is missing)");
        assert_eq!(PayloadFilter::compile(&json!({"data.amount": 250})).unwrap().explain(&envelope()), None);
    }
}
