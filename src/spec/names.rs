//! Azure's naming rules for the resources a manifest names.
//!
//! Each rule is written twice on purpose: as an ECMA-262 pattern for the editor schema
//! and as plain Rust that explains *what* is wrong. A test runs both over a table of
//! names through an independent JSON Schema validator, so they cannot drift apart.
//!
//! Sources: the path-parameter patterns of Microsoft.MachineLearningServices
//! 2026-07-01 (workspace, compute, connection), the older `^[a-zA-Z0-9][a-zA-Z0-9\-_]{0,254}$`
//! asset-name pattern (dropped by the TypeSpec conversion, kept here as the safe rule),
//! common-types v3 (resource group) and Azure's documented limits (tags, experiments).

/// One naming rule.
#[derive(Debug)]
pub struct NameRule {
    /// What is being named, for messages: "workspace name".
    pub what: &'static str,
    /// Anchored ECMA-262 pattern for the JSON schema.
    pub pattern: &'static str,
    first: CharClass,
    rest: CharClass,
    min: usize,
    max: usize,
    /// Computes may not end in `-<digits>` (Azure reserves that for node names).
    no_dash_digits_suffix: bool,
    /// Resource groups may not end in a period.
    no_trailing_period: bool,
}

#[derive(Debug, Clone, Copy)]
enum CharClass {
    Letter,
    Alnum,
    /// letters, digits, `-`
    AlnumDash,
    /// letters, digits, `-`, `_`
    AlnumDashUnderscore,
    /// letters, digits, `-`, `_`, `.`
    AlnumDashUnderscoreDot,
    /// letters, digits, `-`, `_`, `.`, `(`, `)`
    ResourceGroup,
}

impl CharClass {
    fn allows(self, c: char) -> bool {
        let alnum = c.is_ascii_alphanumeric();
        match self {
            CharClass::Letter => c.is_ascii_alphabetic(),
            CharClass::Alnum => alnum,
            CharClass::AlnumDash => alnum || c == '-',
            CharClass::AlnumDashUnderscore => alnum || c == '-' || c == '_',
            CharClass::AlnumDashUnderscoreDot => alnum || matches!(c, '-' | '_' | '.'),
            CharClass::ResourceGroup => alnum || matches!(c, '-' | '_' | '.' | '(' | ')'),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            CharClass::Letter => "a letter",
            CharClass::Alnum => "a letter or digit",
            CharClass::AlnumDash => "letters, digits and `-`",
            CharClass::AlnumDashUnderscore => "letters, digits, `-` and `_`",
            CharClass::AlnumDashUnderscoreDot => "letters, digits, `-`, `_` and `.`",
            CharClass::ResourceGroup => "letters, digits, `-`, `_`, `.`, `(` and `)`",
        }
    }
}

pub const WORKSPACE: NameRule = NameRule {
    what: "workspace name",
    pattern: "^[a-zA-Z0-9][a-zA-Z0-9_-]{2,32}$",
    first: CharClass::Alnum,
    rest: CharClass::AlnumDashUnderscore,
    min: 3,
    max: 33,
    no_dash_digits_suffix: false,
    no_trailing_period: false,
};

pub const CONNECTION: NameRule = NameRule {
    what: "registry (workspace connection) name",
    pattern: "^[a-zA-Z0-9][a-zA-Z0-9_-]{2,32}$",
    ..WORKSPACE
};

pub const COMPUTE: NameRule = NameRule {
    what: "cluster (compute) name",
    pattern: "^[a-zA-Z](?![a-zA-Z0-9-]*-\\d+$)[a-zA-Z0-9-]{2,23}$",
    first: CharClass::Letter,
    rest: CharClass::AlnumDash,
    min: 3,
    max: 24,
    no_dash_digits_suffix: true,
    no_trailing_period: false,
};

/// Environment and code asset names that amlspec creates.
pub const ASSET: NameRule = NameRule {
    what: "environment name",
    pattern: "^[a-zA-Z0-9][a-zA-Z0-9_-]{0,254}$",
    first: CharClass::Alnum,
    rest: CharClass::AlnumDashUnderscore,
    min: 1,
    max: 255,
    no_dash_digits_suffix: false,
    no_trailing_period: false,
};

/// Names of existing environments a job refers to (Azure's curated environments
/// have dots, e.g. `AzureML-sklearn-1.0-ubuntu20.04-py38-cpu`).
pub const EXISTING_ASSET: NameRule = NameRule {
    what: "environment name",
    pattern: "^[a-zA-Z0-9][a-zA-Z0-9._-]{0,254}$",
    rest: CharClass::AlnumDashUnderscoreDot,
    ..ASSET
};

pub const ASSET_VERSION: NameRule = NameRule {
    what: "environment version",
    pattern: "^[a-zA-Z0-9][a-zA-Z0-9._-]{0,29}$",
    first: CharClass::Alnum,
    rest: CharClass::AlnumDashUnderscoreDot,
    min: 1,
    max: 30,
    no_dash_digits_suffix: false,
    no_trailing_period: false,
};

/// Job names leave room for the `-<8 hex>` suffix that content-addresses a run.
pub const JOB: NameRule = NameRule {
    what: "job name",
    pattern: "^[a-zA-Z0-9][a-zA-Z0-9_-]{0,245}$",
    max: 246,
    ..ASSET
};

pub const EXPERIMENT: NameRule = NameRule {
    what: "experiment name",
    pattern: "^[a-zA-Z0-9][a-zA-Z0-9_-]{0,249}$",
    max: 250,
    ..ASSET
};

pub const RESOURCE_GROUP: NameRule = NameRule {
    what: "resource group name",
    pattern: "^[-\\w.()]{0,89}[-\\w()]$",
    first: CharClass::ResourceGroup,
    rest: CharClass::ResourceGroup,
    min: 1,
    max: 90,
    no_dash_digits_suffix: false,
    no_trailing_period: true,
};

/// A problem with a name, as a message (what is wrong) and a hint (what is allowed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameProblem {
    pub message: String,
    pub hint: String,
}

impl NameRule {
    pub fn check(&self, name: &str) -> Result<(), NameProblem> {
        let problem = |message: String| NameProblem {
            message,
            hint: self.summary(),
        };
        let length = name.chars().count();
        if length < self.min || length > self.max {
            let characters = if length == 1 {
                "character"
            } else {
                "characters"
            };
            return Err(problem(format!(
                "{} {} is {length} {characters} long; it must be {} to {}",
                self.what,
                crate::diagnostic::quoted(name),
                self.min,
                self.max
            )));
        }
        let mut chars = name.chars();
        let first = chars.next().expect("length checked above");
        if !self.first.allows(first) {
            return Err(problem(format!(
                "{} {} must start with {}",
                self.what,
                crate::diagnostic::quoted(name),
                self.first.describe()
            )));
        }
        if let Some(bad) = chars.find(|&c| !self.rest.allows(c)) {
            return Err(problem(format!(
                "{} {} contains {}, which is not allowed",
                self.what,
                crate::diagnostic::quoted(name),
                crate::diagnostic::quoted(&bad.to_string())
            )));
        }
        if self.no_trailing_period && name.ends_with('.') {
            return Err(problem(format!(
                "{} {} must not end with `.`",
                self.what,
                crate::diagnostic::quoted(name)
            )));
        }
        if self.no_dash_digits_suffix && ends_with_dash_digits(name) {
            return Err(problem(format!(
                "{} {} must not end with `-` followed by digits",
                self.what,
                crate::diagnostic::quoted(name)
            )));
        }
        Ok(())
    }

    /// What the rule allows, in words.
    pub fn summary(&self) -> String {
        let mut text = format!(
            "a {} has {} to {} characters: {}, then {}",
            self.what,
            self.min,
            self.max,
            self.first.describe(),
            self.rest.describe()
        );
        if self.no_dash_digits_suffix {
            text.push_str(", and must not end in `-<digits>`");
        }
        if self.no_trailing_period {
            text.push_str(", not ending in `.`");
        }
        text
    }
}

fn ends_with_dash_digits(name: &str) -> bool {
    let trimmed = name.trim_end_matches(|c: char| c.is_ascii_digit());
    trimmed.len() < name.len() && trimmed.ends_with('-')
}

pub const SUBSCRIPTION_ID_PATTERN: &str =
    "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";

pub fn is_guid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Azure region programmatic names: `westeurope`, `eastus2`.
pub const LOCATION_PATTERN: &str = "^[a-zA-Z0-9]{2,40}$";

pub fn is_location(text: &str) -> bool {
    (2..=40).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// A container registry host, optionally with a port: `myregistry.azurecr.io`.
pub const REGISTRY_ADDRESS_PATTERN: &str = "^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*(:[0-9]{1,5})?$";

pub fn is_registry_address(text: &str) -> bool {
    let (host, port) = match text.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (text, None),
    };
    let port_ok =
        port.is_none_or(|p| (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()));
    let label_ok = |label: &str| {
        !label.is_empty()
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    port_ok && host.split('.').all(label_ok)
}

/// Azure VM size names: `STANDARD_NC6`, `Standard_DS3_v2`.
pub const VM_SIZE_PATTERN: &str = "^[a-zA-Z0-9_]{1,64}$";

pub fn is_vm_size(text: &str) -> bool {
    (1..=64).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Environment variable names passed to a job.
pub const ENV_VAR_PATTERN: &str = "^[A-Za-z_][A-Za-z0-9_]*$";

/// ARM tag limits (tracked resources: workspace, compute).
pub const MAX_TAGS: usize = 50;
pub const MAX_TAG_NAME: usize = 512;
pub const MAX_TAG_VALUE: usize = 256;
pub const TAG_NAME_FORBIDDEN: &[char] = &['<', '>', '%', '&', '\\', '?', '/'];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compute_names() {
        for ok in [
            "gpu-cluster",
            "abc",
            "cpu1",
            "a-b-c",
            "x".repeat(24).as_str(),
            "gpu-1a",
        ] {
            assert_eq!(COMPUTE.check(ok), Ok(()), "{ok}");
        }
        for bad in [
            "ab",
            "1gpu",
            "gpu_cluster",
            "gpu-1",
            "gpu-cluster-42",
            &"x".repeat(25),
            "gpu cluster",
        ] {
            assert!(COMPUTE.check(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn workspace_names() {
        assert_eq!(WORKSPACE.check("pets-ws"), Ok(()));
        assert_eq!(WORKSPACE.check("a_b"), Ok(()));
        let problem = WORKSPACE.check("pe").unwrap_err();
        assert_eq!(
            problem.message,
            "workspace name `pe` is 2 characters long; it must be 3 to 33"
        );
        assert!(
            WORKSPACE
                .check("-abc")
                .unwrap_err()
                .message
                .contains("must start with")
        );
        assert!(WORKSPACE.check("ab.c").unwrap_err().message.contains("`.`"));
    }

    #[test]
    fn resource_groups() {
        assert_eq!(RESOURCE_GROUP.check("ml-rg"), Ok(()));
        assert_eq!(RESOURCE_GROUP.check("rg.(prod)_1"), Ok(()));
        assert!(RESOURCE_GROUP.check("rg.").is_err());
        assert!(RESOURCE_GROUP.check("").is_err());
        assert!(RESOURCE_GROUP.check(&"r".repeat(91)).is_err());
    }

    #[test]
    fn guids_locations_addresses_vm_sizes() {
        assert!(is_guid("00000000-0000-0000-0000-000000000001"));
        assert!(!is_guid("00000000-0000-0000-0000-00000000000"));
        assert!(!is_guid("not-a-guid"));
        assert!(is_location("westeurope"));
        assert!(!is_location("West Europe"));
        assert!(is_registry_address("myregistry.azurecr.io"));
        assert!(is_registry_address("localhost:5000"));
        assert!(!is_registry_address("https://myregistry.azurecr.io"));
        assert!(!is_registry_address("my_registry.io"));
        assert!(is_vm_size("Standard_DS3_v2"));
        assert!(!is_vm_size("Standard DS3"));
    }
}
