//! Fault injection: rules matched against each request, decided by a seeded generator so
//! a run with the same seed and the same request order injects the same faults.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One kind of misbehaviour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Fault {
    /// Delay the answer by `fixed_ms` plus a uniform `0..=jitter_ms`.
    Latency {
        fixed_ms: u64,
        #[serde(default)]
        jitter_ms: u64,
    },
    /// 429 Too Many Requests with `Retry-After`.
    Throttle { retry_after_secs: u64 },
    /// A 5xx answer (500 or 503), with `Retry-After: 1` on 503 as Azure does.
    ServerError { status: u16 },
    /// Close the connection without a complete answer.
    DropConnection,
    /// Carry the request out, then close the connection without its answer (a gateway
    /// timing out after ARM acted): the client cannot tell it from `DropConnection`.
    LoseAnswer,
    /// The long-running operation this request starts ends Failed.
    FailLro,
    /// ARM answers 401 ExpiredAuthenticationToken whatever the token says.
    ExpiredToken,
}

impl Fault {
    /// The kind of fault, for counting: `latency`, `throttle`, `500`, `503`,
    /// `drop connection`, `failed lro`, `expired token`.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Latency { .. } => "latency",
            Fault::Throttle { .. } => "throttle (429)",
            Fault::ServerError { status: 500 } => "server error 500",
            Fault::ServerError { status: 503 } => "server error 503",
            Fault::ServerError { .. } => "server error (other)",
            Fault::DropConnection => "dropped connection",
            Fault::LoseAnswer => "answer lost after acting",
            Fault::FailLro => "failed long-running operation",
            Fault::ExpiredToken => "expired token",
        }
    }
}

/// Which endpoints a rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultTarget {
    #[default]
    Any,
    Arm,
    Blob,
    Token,
    /// Container registries (`/v2/...`, `/oauth2/token` on a registry host).
    Registry,
}

/// A fault plus when it applies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultRule {
    pub fault: Fault,
    /// Chance per matching request, 0.0 to 1.0.
    #[serde(default = "one")]
    pub probability: f64,
    /// Apply to at most this many requests, then retire the rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    #[serde(default)]
    pub target: FaultTarget,
    /// Only requests whose path contains this text (ASCII case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_contains: Option<String>,
    /// Only requests with this HTTP method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
}

fn one() -> f64 {
    1.0
}

impl FaultRule {
    pub fn always(fault: Fault) -> FaultRule {
        FaultRule {
            fault,
            probability: 1.0,
            count: None,
            target: FaultTarget::Any,
            path_contains: None,
            method: None,
        }
    }

    pub fn times(mut self, count: u32) -> FaultRule {
        self.count = Some(count);
        self
    }

    pub fn on(mut self, target: FaultTarget) -> FaultRule {
        self.target = target;
        self
    }

    pub fn with_probability(mut self, p: f64) -> FaultRule {
        self.probability = p;
        self
    }

    pub fn path_contains(mut self, text: &str) -> FaultRule {
        self.path_contains = Some(text.to_string());
        self
    }

    pub fn method(mut self, method: &str) -> FaultRule {
        self.method = Some(method.to_string());
        self
    }

    /// Parses the CLI form `KIND[:ARG[:ARG]][,p=P][,n=COUNT][,on=arm|blob|token|registry][,path=TEXT][,method=M]`.
    /// Kinds: `latency:FIXED_MS[:JITTER_MS]`, `throttle[:RETRY_AFTER]`, `error:500|503`,
    /// `drop`, `lose-answer`, `fail-lro`, `expired-token`.
    pub fn parse(spec: &str) -> Result<FaultRule, String> {
        let mut parts = spec.split(',');
        let head = parts.next().unwrap_or_default();
        let mut args = head.split(':');
        let kind = args.next().unwrap_or_default();
        let args: Vec<&str> = args.collect();
        let num = |i: usize, default: Option<u64>| -> Result<u64, String> {
            match args.get(i) {
                Some(a) => a
                    .trim_end_matches("ms")
                    .parse::<u64>()
                    .map_err(|_| format!("`{a}` is not a number in fault `{spec}`")),
                None => default.ok_or_else(|| format!("fault `{spec}` needs an argument")),
            }
        };
        let fault = match kind {
            "latency" => Fault::Latency {
                fixed_ms: num(0, None)?,
                jitter_ms: num(1, Some(0))?,
            },
            "throttle" => Fault::Throttle {
                retry_after_secs: num(0, Some(1))?,
            },
            "error" => {
                let status = num(0, Some(500))? as u16;
                if status != 500 && status != 503 {
                    return Err(format!("fault `{spec}`: error status must be 500 or 503"));
                }
                Fault::ServerError { status }
            }
            "drop" => Fault::DropConnection,
            "lose-answer" => Fault::LoseAnswer,
            "fail-lro" => Fault::FailLro,
            "expired-token" => Fault::ExpiredToken,
            other => {
                return Err(format!(
                    "unknown fault `{other}` (expected latency, throttle, error, drop, lose-answer, fail-lro, expired-token)"
                ));
            }
        };
        let mut rule = FaultRule::always(fault);
        for part in parts {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}` in fault `{spec}` is not key=value"))?;
            match k {
                "p" => {
                    rule.probability = v
                        .parse()
                        .ok()
                        .filter(|p: &f64| (0.0..=1.0).contains(p))
                        .ok_or_else(|| format!("p={v} must be between 0 and 1"))?
                }
                "n" => rule.count = Some(v.parse().map_err(|_| format!("n={v} is not a count"))?),
                "on" => {
                    rule.target = match v {
                        "arm" => FaultTarget::Arm,
                        "blob" => FaultTarget::Blob,
                        "token" => FaultTarget::Token,
                        "registry" => FaultTarget::Registry,
                        "any" => FaultTarget::Any,
                        _ => {
                            return Err(format!(
                                "on={v}: expected arm, blob, token, registry or any"
                            ));
                        }
                    }
                }
                "path" => rule.path_contains = Some(v.to_string()),
                "method" => rule.method = Some(v.to_ascii_uppercase()),
                _ => return Err(format!("unknown fault option `{k}` in `{spec}`")),
            }
        }
        Ok(rule)
    }
}

/// What the request pipeline must do for one request.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Decision {
    pub delay: Option<Duration>,
    pub action: Option<Fault>,
}

/// SplitMix64: tiny, seedable and good enough for fault dice; a crate would add nothing.
#[derive(Debug, Clone)]
pub(crate) struct Dice(u64);

impl Dice {
    pub(crate) fn new(seed: u64) -> Dice {
        Dice(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Debug)]
pub(crate) struct FaultState {
    pub rules: Vec<FaultRule>,
    dice: Dice,
    /// Faults injected since the emulator started, by kind ([`Fault::kind`]).
    pub injected: std::collections::BTreeMap<&'static str, u64>,
}

impl FaultState {
    pub(crate) fn new(rules: Vec<FaultRule>, seed: u64) -> FaultState {
        FaultState {
            rules,
            dice: Dice::new(seed),
            injected: std::collections::BTreeMap::new(),
        }
    }

    pub(crate) fn set(&mut self, rules: Vec<FaultRule>, seed: Option<u64>) {
        self.rules = rules;
        if let Some(seed) = seed {
            self.dice = Dice::new(seed);
        }
    }

    fn matches(rule: &FaultRule, target: FaultTarget, method: &str, path: &str) -> bool {
        (rule.target == FaultTarget::Any || rule.target == target)
            && rule
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && rule
                .path_contains
                .as_deref()
                .is_none_or(|p| path.to_ascii_lowercase().contains(&p.to_ascii_lowercase()))
    }

    /// Decides latency and at most one failing action for a request. `FailLro` rules are
    /// not consumed here (see [`FaultState::take_lro_failure`]).
    pub(crate) fn decide(&mut self, target: FaultTarget, method: &str, path: &str) -> Decision {
        let mut decision = Decision::default();
        let mut i = 0;
        while i < self.rules.len() {
            let rule = &self.rules[i];
            if matches!(rule.fault, Fault::FailLro)
                || !Self::matches(rule, target, method, path)
                || (decision.action.is_some() && !matches!(rule.fault, Fault::Latency { .. }))
            {
                i += 1;
                continue;
            }
            let p = rule.probability;
            if p < 1.0 && self.dice.unit() >= p {
                i += 1;
                continue;
            }
            let rule = &mut self.rules[i];
            match &rule.fault {
                Fault::Latency {
                    fixed_ms,
                    jitter_ms,
                } => {
                    let jitter = if *jitter_ms > 0 {
                        self.dice.next_u64() % (jitter_ms + 1)
                    } else {
                        0
                    };
                    let d = Duration::from_millis(fixed_ms + jitter);
                    decision.delay = Some(decision.delay.unwrap_or_default() + d);
                }
                other => decision.action = Some(other.clone()),
            }
            *self.injected.entry(rule.fault.kind()).or_default() += 1;
            if let Some(n) = rule.count.as_mut() {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.rules.remove(i);
                    continue;
                }
            }
            i += 1;
        }
        decision
    }

    /// True when an LRO started by this request must fail; consumes one count.
    pub(crate) fn take_lro_failure(&mut self, method: &str, path: &str) -> bool {
        for i in 0..self.rules.len() {
            let rule = &self.rules[i];
            if !matches!(rule.fault, Fault::FailLro)
                || !Self::matches(rule, FaultTarget::Arm, method, path)
            {
                continue;
            }
            if rule.probability < 1.0 && self.dice.unit() >= rule.probability {
                return false;
            }
            *self.injected.entry(Fault::FailLro.kind()).or_default() += 1;
            let rule = &mut self.rules[i];
            if let Some(n) = rule.count.as_mut() {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.rules.remove(i);
                }
            }
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cli_specs() {
        let cases = [
            (
                "latency:200:50",
                FaultRule::always(Fault::Latency {
                    fixed_ms: 200,
                    jitter_ms: 50,
                }),
            ),
            (
                "throttle:3,n=2,on=arm",
                FaultRule::always(Fault::Throttle {
                    retry_after_secs: 3,
                })
                .times(2)
                .on(FaultTarget::Arm),
            ),
            (
                "error:503,p=0.5",
                FaultRule::always(Fault::ServerError { status: 503 }).with_probability(0.5),
            ),
            (
                "drop,path=computes",
                FaultRule::always(Fault::DropConnection).path_contains("computes"),
            ),
            ("fail-lro,n=1", FaultRule::always(Fault::FailLro).times(1)),
            (
                "lose-answer,method=PUT",
                FaultRule::always(Fault::LoseAnswer).method("PUT"),
            ),
        ];
        for (spec, want) in cases {
            assert_eq!(FaultRule::parse(spec).unwrap(), want, "{spec}");
        }
        for bad in ["error:404", "nope", "latency", "throttle,p=2", "drop,x=1"] {
            assert!(FaultRule::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn same_seed_same_decisions() {
        let rules =
            vec![FaultRule::always(Fault::ServerError { status: 500 }).with_probability(0.3)];
        let run = |seed| {
            let mut s = FaultState::new(rules.clone(), seed);
            (0..64)
                .map(|_| s.decide(FaultTarget::Arm, "GET", "/x").action.is_some())
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        let hits = run(7).iter().filter(|h| **h).count();
        assert!((5..40).contains(&hits), "{hits}");
    }

    #[test]
    fn counted_rules_retire() {
        let mut s = FaultState::new(
            vec![
                FaultRule::always(Fault::Throttle {
                    retry_after_secs: 1,
                })
                .times(2),
            ],
            0,
        );
        let hits: Vec<bool> = (0..4)
            .map(|_| s.decide(FaultTarget::Arm, "GET", "/").action.is_some())
            .collect();
        assert_eq!(hits, vec![true, true, false, false]);
    }
}
