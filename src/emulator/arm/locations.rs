//! `locations/{location}/vmSizes`, `/usages` and `/quotas` of Azure ML: the regional
//! capacity of [`super::super::capacity`] in the OpenAPI's shapes. ARM has checked the
//! api-version, the token and the subscription by the time these run.

use axum::http::{Method, StatusCode};

use super::super::capacity::{self, normalize_location};
use super::super::reply::{ArmError, Reply};
use super::super::world::World;
use super::{Ctx, Req, accepted_api_versions, page};

/// What a `locations/{location}/...` GET asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Question {
    VmSizes,
    Usages,
    Quotas,
}

impl Question {
    pub(crate) fn from_segment(seg: &str) -> Option<Question> {
        match seg.to_ascii_lowercase().as_str() {
            "vmsizes" => Some(Question::VmSizes),
            "usages" => Some(Question::Usages),
            "quotas" => Some(Question::Quotas),
            _ => None,
        }
    }

    fn type_name(self) -> &'static str {
        match self {
            Question::VmSizes => "locations/vmSizes",
            Question::Usages => "locations/usages",
            Question::Quotas => "locations/quotas",
        }
    }
}

pub(crate) fn answer(
    world: &World,
    ctx: &Ctx<'_>,
    req: &Req,
    sub: &str,
    location: &str,
    question: Question,
) -> Result<Reply, ArmError> {
    if req.method != Method::GET {
        return Err(ArmError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!(
                "The requested method '{}' is not allowed for '{}'; use GET.",
                req.method,
                question.type_name()
            ),
        ));
    }
    let loc = normalize_location(location);
    // The OpenAPI's pattern for the location parameter, after ARM's normalization.
    if !super::super::openapi::matches_pattern(r"^[-\w\._]+$", &loc) {
        return Err(ArmError::bad_request(
            "ValidationError",
            format!(
                "The location '{location}' is invalid: it must match the pattern '^[-\\w\\._]+$'."
            ),
        )
        .with_target("location"));
    }
    let capacity = &world.capacity;
    if !capacity.knows_region(&loc) {
        let mut regions: Vec<String> = capacity
            .regions
            .iter()
            .map(|r| normalize_location(r))
            .collect();
        regions.sort();
        return Err(ArmError::bad_request(
            "NoRegisteredProviderFound",
            format!(
                "No registered resource provider found for location '{location}' and API version '{}' for type '{}'. The supported api-versions are '{}'. The supported locations are '{}'.",
                ctx.api_version,
                question.type_name(),
                accepted_api_versions("microsoft.machinelearningservices").join(", "),
                regions.join(", "),
            ),
        ));
    }
    Ok(match question {
        Question::VmSizes => Reply::json(StatusCode::OK, capacity::vm_sizes(capacity, &loc)),
        Question::Usages => page(ctx, req, capacity::usages(world, capacity, sub, &loc)),
        Question::Quotas => page(ctx, req, capacity::quotas(world, capacity, sub, &loc)),
    })
}
