//! Results: named figures beside their targets, printed as one table for people and as one
//! JSON document for tools.

use std::fmt::Write;

use serde_json::{Map, Value, json};

use crate::herald::Backend;

#[derive(Debug, Clone, Copy)]
pub enum Goal {
    AtLeast(f64),
    AtMost(f64),
}

impl Goal {
    fn met(self, value: f64) -> bool {
        match self {
            Self::AtLeast(x) => value >= x,
            Self::AtMost(x) => value <= x,
        }
    }

    fn text(self) -> String {
        let (op, x) = match self {
            Self::AtLeast(x) => (">=", x),
            Self::AtMost(x) => ("<=", x),
        };
        let shown = if x.fract() == 0.0 && x >= 0.0 { group_digits(&format!("{x:.0}")) } else { show(x) };
        format!("{op} {shown}")
    }
}

#[derive(Debug)]
pub struct Figure {
    key: String,
    label: String,
    value: Value,
    goal: Option<Goal>,
    /// When the target is for another setting than the one measured.
    goal_note: Option<String>,
}

impl Figure {
    pub fn goal(&mut self, goal: Goal) -> &mut Self {
        self.goal = Some(goal);
        self
    }

    pub fn goal_note(&mut self, note: impl Into<String>) -> &mut Self {
        self.goal_note = Some(note.into());
        self
    }

    pub fn number(&self) -> Option<f64> {
        self.value.as_f64()
    }

    fn met(&self) -> Option<bool> {
        Some(self.goal?.met(self.number()?))
    }

    fn shown(&self) -> String {
        match &self.value {
            Value::Number(n) => match n.as_u64() {
                Some(whole) => group_digits(&whole.to_string()),
                None => n.as_f64().map(show).unwrap_or_default(),
            },
            Value::String(s) => s.clone(),
            Value::Null => "-".into(),
            other => other.to_string(),
        }
    }
}

#[derive(Debug)]
pub struct ScenarioResult {
    pub scenario: &'static str,
    pub backend: Option<Backend>,
    pub complete: bool,
    pub wall_s: f64,
    pub notes: Vec<String>,
    figures: Vec<Figure>,
}

impl ScenarioResult {
    pub fn new(scenario: &'static str, backend: Option<Backend>) -> Self {
        Self { scenario, backend, complete: true, wall_s: 0.0, notes: Vec::new(), figures: Vec::new() }
    }

    fn push(&mut self, key: &str, label: &str, value: Value) -> &mut Figure {
        self.figures.retain(|f| f.key != key);
        self.figures.push(Figure {
            key: key.into(),
            label: label.into(),
            value,
            goal: None,
            goal_note: None,
        });
        self.figures.last_mut().expect("just pushed")
    }

    /// A number; NaN and infinities are kept out of the JSON as null.
    pub fn num(&mut self, key: &str, label: &str, value: f64) -> &mut Figure {
        let value = serde_json::Number::from_f64(round(value)).map_or(Value::Null, Value::Number);
        self.push(key, label, value)
    }

    pub fn count(&mut self, key: &str, label: &str, value: u64) -> &mut Figure {
        self.push(key, label, json!(value))
    }

    pub fn text(&mut self, key: &str, label: &str, value: impl Into<String>) -> &mut Figure {
        self.push(key, label, Value::String(value.into()))
    }

    pub fn set_goal(&mut self, key: &str, goal: Goal) {
        if let Some(f) = self.figures.iter_mut().find(|f| f.key == key) {
            f.goal = Some(goal);
        }
    }

    pub fn figure(&self, key: &str) -> Option<&Figure> {
        self.figures.iter().find(|f| f.key == key)
    }

    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    fn label(&self) -> (String, String) {
        let backend = self.backend.map_or("-", Backend::name).to_string();
        let scenario =
            if self.complete { self.scenario.to_string() } else { format!("{} (INCOMPLETE)", self.scenario) };
        (scenario, backend)
    }

    pub fn to_json(&self) -> Value {
        let mut figures = Map::new();
        let mut targets = Map::new();
        for f in &self.figures {
            figures.insert(f.key.clone(), f.value.clone());
            if let (Some(goal), Some(met)) = (f.goal, f.met()) {
                let mut t = json!({"target": goal.text(), "met": met});
                if let Some(note) = &f.goal_note {
                    t["note"] = json!(note);
                }
                targets.insert(f.key.clone(), t);
            }
        }
        json!({
            "scenario": self.scenario,
            "backend": self.backend.map(Backend::name),
            "complete": self.complete,
            "wall_s": round(self.wall_s),
            "figures": figures,
            "targets": targets,
            "notes": self.notes,
        })
    }
}

fn round(v: f64) -> f64 {
    if v.abs() >= 100.0 { (v * 10.0).round() / 10.0 } else { (v * 1000.0).round() / 1000.0 }
}

/// 12,345 / 123.4 / 1.23 / 0.123
pub fn show(v: f64) -> String {
    if !v.is_finite() {
        return "-".into();
    }
    let a = v.abs();
    if a >= 1000.0 {
        let out = group_digits(&format!("{a:.0}"));
        if v < 0.0 { format!("-{out}") } else { out }
    } else if a >= 100.0 {
        format!("{v:.1}")
    } else if a >= 1.0 || a == 0.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// Values longer than this overflow the value column of the table.
const LONG_VALUE: usize = 24;

/// 1234567 → 1,234,567
fn group_digits(digits: &str) -> String {
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The table of every result: one block per scenario and backend.
pub fn table(results: &[ScenarioResult]) -> String {
    let mut rows: Vec<[String; 5]> =
        vec![["scenario".into(), "backend".into(), "figure".into(), "value".into(), "target".into()]];
    let mut notes_after: Vec<(usize, Vec<String>)> = Vec::new();
    for r in results {
        let (scenario, backend) = r.label();
        for (i, f) in r.figures.iter().enumerate() {
            let target = match (f.goal, f.met()) {
                (Some(goal), Some(met)) => {
                    let verdict = if met { "ok" } else { "MISS" };
                    match &f.goal_note {
                        Some(note) => format!("{} {verdict} ({note})", goal.text()),
                        None => format!("{} {verdict}", goal.text()),
                    }
                }
                _ => String::new(),
            };
            let (s, b) =
                if i == 0 { (scenario.clone(), backend.clone()) } else { (String::new(), String::new()) };
            rows.push([s, b, f.label.clone(), f.shown(), target]);
        }
        if r.figures.is_empty() {
            rows.push([scenario, backend, "(no figures)".into(), String::new(), String::new()]);
        }
        notes_after.push((rows.len(), r.notes.clone()));
    }
    // A long text value (a list of threads) overflows its column rather than widening it.
    let fits = |c: usize, cell: &str| c != 3 || cell.chars().count() <= LONG_VALUE;
    let widths: Vec<usize> = (0..5)
        .map(|c| {
            rows.iter().map(|r| &r[c]).filter(|s| fits(c, s)).map(|s| s.chars().count()).max().unwrap_or(0)
        })
        .collect();
    let line = |r: &[String; 5]| {
        let cells: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(c, cell)| {
                let pad = widths[c].saturating_sub(cell.chars().count());
                // Values right-aligned, the rest left-aligned.
                if c == 3 && fits(c, cell) {
                    format!("{}{cell}", " ".repeat(pad))
                } else {
                    format!("{cell}{}", " ".repeat(pad))
                }
            })
            .collect();
        cells.join("  ").trim_end().to_string()
    };
    let mut out = String::new();
    let rule = "-".repeat(widths.iter().sum::<usize>() + 8);
    out.push_str(&line(&rows[0]));
    out.push('\n');
    out.push_str(&rule);
    out.push('\n');
    let mut next_notes = notes_after.iter().peekable();
    for (i, row) in rows.iter().enumerate().skip(1) {
        out.push_str(&line(row));
        out.push('\n');
        while let Some((end, notes)) = next_notes.peek() {
            if *end != i + 1 {
                break;
            }
            for note in notes {
                let _ = writeln!(out, "    note: {note}");
            }
            out.push_str(&rule);
            out.push('\n');
            next_notes.next();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::show;

    #[test]
    fn numbers_read_well() {
        assert_eq!(show(1234567.8), "1,234,568");
        assert_eq!(show(999.94), "999.9");
        assert_eq!(show(4.5678), "4.57");
        assert_eq!(show(0.25), "0.250");
        assert_eq!(show(0.0), "0.00");
    }
}
