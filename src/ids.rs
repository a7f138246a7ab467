//! ARM resource ids, built from validated names so they are always well-formed.

use std::fmt;

/// An ARM resource id: `/subscriptions/{sub}/resourceGroups/{rg}/providers/...`.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct ResourceId(String);

impl ResourceId {
    pub fn resource_group(subscription_id: &str, resource_group: &str) -> Self {
        ResourceId(format!(
            "/subscriptions/{subscription_id}/resourceGroups/{resource_group}"
        ))
    }

    /// `/subscriptions/{sub}/resourceGroups/{rg}/providers/{namespace}/{type}/{name}`.
    pub fn provider(
        subscription_id: &str,
        resource_group: &str,
        namespace_type: &str,
        name: &str,
    ) -> Self {
        ResourceId(format!(
            "/subscriptions/{subscription_id}/resourceGroups/{resource_group}/providers/{namespace_type}/{name}"
        ))
    }

    pub fn workspace(subscription_id: &str, resource_group: &str, name: &str) -> Self {
        Self::provider(
            subscription_id,
            resource_group,
            "Microsoft.MachineLearningServices/workspaces",
            name,
        )
    }

    /// What Azure ML offers in a region: `/subscriptions/{sub}/providers/
    /// Microsoft.MachineLearningServices/locations/{location}/{what}` (`vmSizes`,
    /// `usages`, `quotas`).
    pub fn ml_location(subscription_id: &str, location: &str, what: &str) -> Self {
        ResourceId(format!(
            "/subscriptions/{subscription_id}/providers/Microsoft.MachineLearningServices/locations/{location}/{what}"
        ))
    }

    /// A child resource: `{self}/{kind}/{name}`.
    pub fn child(&self, kind: &str, name: &str) -> Self {
        ResourceId(format!("{}/{kind}/{name}", self.0))
    }

    /// A collection under this resource, for list requests: `{self}/{kind}`.
    pub fn collection(&self, kind: &str) -> Self {
        ResourceId(format!("{}/{kind}", self.0))
    }

    /// An id as a saved plan records it (made by this module when the plan was made).
    pub fn from_plan(id: &str) -> Self {
        ResourceId(id.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last segment (the resource's name).
    pub fn name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or_default()
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_children() {
        let ws = ResourceId::provider(
            "sub",
            "rg",
            "Microsoft.MachineLearningServices/workspaces",
            "ws",
        );
        let env = ws.child("environments", "fastai2").child("versions", "1");
        assert_eq!(
            env.as_str(),
            "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws/environments/fastai2/versions/1"
        );
        assert_eq!(env.name(), "1");
    }
}
