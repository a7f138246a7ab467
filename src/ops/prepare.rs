//! Everything a plan needs, for `plan` and `apply` alike: load the specs, work out the
//! desired state, read the live state. Three overlaps keep the wall time near the round
//! trips Azure (and the registries) need:
//!
//! 1. signing in goes on while the specs load (the first token needs nothing from them);
//! 2. the workspaces are read while content addressing hashes the jobs' source folders
//!    (a workspace read needs only its id), and with them what the regions the specs
//!    name offer clusters (preflight); their children are read as soon as the hashes are
//!    known, without waiting for the workspace reads (one round trip, not two), while the
//!    manifest digest is worked out;
//! 3. the registries are asked whether the environments' images can be pulled (preflight)
//!    from the moment the specs are loaded, while everything else goes on; only the
//!    answers the plan needs are waited for.
//!
//! Problems of the specs' own content come before any connection problem.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::azure::client::ArmError;
use crate::desired::{self, Desired, DesiredError};
use crate::ids::ResourceId;
use crate::observe::images::ImageProbes;
use crate::observe::{self, Observed, Preflight};
use crate::ops::connect::{ConnectError, Connection, connect};
use crate::plan;
use crate::settings::ConnectionSettings;
use crate::spec::{self, Loaded, interpolate::EnvVars};

/// The inputs of a plan.
pub struct Ready {
    pub desired: Arc<Desired>,
    pub observed: Observed,
    /// [`plan::manifest_digest`] of `desired`.
    pub manifest_digest: String,
    /// Signed in; holds the in-process emulator under `--emulator` (shut it down when
    /// done).
    pub connection: Connection,
}

/// Why the inputs of a plan could not be had.
#[derive(Debug)]
pub enum PrepareError {
    /// The specs have errors: they are among the loaded problems.
    Specs,
    /// The specs' content could not be addressed (an unreadable source folder).
    Desired(Vec<DesiredError>),
    Connect(ConnectError),
    Observe(Vec<ArmError>),
}

/// What preparing found: the loaded specs' problems (warnings too, to be shown whatever
/// happened next) and the plan's inputs, or why there are none.
pub struct Prepared {
    pub loaded: Loaded,
    pub ready: Result<Ready, PrepareError>,
}

pub async fn prepare(
    paths: Vec<PathBuf>,
    options: spec::LoadOptions,
    preflight: Preflight,
    settings: &ConnectionSettings,
    env: &EnvVars,
) -> Prepared {
    // Connecting sends nothing (it starts the in-process emulator under `--emulator`);
    // signing in is the first request, and goes on while the specs load.
    let connection = connect(settings, env).await;
    let sign_in = connection.as_ref().ok().map(|connection| {
        let client = connection.client.clone();
        tokio::spawn(async move { client.sign_in().await })
    });
    let mut loaded = {
        let env = env.clone();
        blocking(move || super::load::load(&paths, &env, options)).await
    };
    let Some(specs) = loaded.specs.take() else {
        // Do not wait for a sign-in (the Azure CLI, say) whose token is not needed.
        if let Some(sign_in) = sign_in {
            sign_in.abort();
        }
        if let Ok(connection) = connection {
            connection.close().await;
        }
        return Prepared {
            loaded,
            ready: Err(PrepareError::Specs),
        };
    };
    let ids: Vec<ResourceId> = specs.workspaces.iter().map(desired::workspace_id).collect();
    let early_regions = observe::regions_of_specs(&specs.workspaces, preflight);
    // The registries are asked at once: the questions need only the specs.
    let images = match &connection {
        Ok(connection) if preflight.images => connection.image_probes(&specs.workspaces),
        _ => ImageProbes::none(),
    };

    let allow_secret_files = options.allow_secret_files;
    let desired_state = move || {
        desired::desired(&specs).map(|mut desired| {
            desired.allow_secret_files = allow_secret_files;
            desired
        })
    };
    let (desired, reads) = tokio::join!(blocking(desired_state), async {
        let connection = connection?;
        if let Some(sign_in) = sign_in {
            sign_in.await.unwrap_or_else(resume_panic);
        }
        // The workspace reads go on in their own tasks while the hashing goes on, and
        // meet their children's reads once it is done. What the regions the specs name
        // offer (preflight) needs nothing from Azure either.
        let workspaces = observe::start_workspace_reads(&connection.client, &ids);
        let regions = observe::start_region_reads(&connection.client, early_regions);
        Ok::<_, ConnectError>((connection, workspaces, regions))
    });
    tracing::info!(ok = desired.is_ok(), "worked out the desired state");
    let ready = async {
        let desired = Arc::new(desired.map_err(PrepareError::Desired)?);
        let (connection, workspaces, regions) = reads.map_err(PrepareError::Connect)?;
        let for_digest = desired.clone();
        let (manifest_digest, observed) = tokio::join!(
            blocking(move || plan::manifest_digest(&for_digest)),
            observe::observe_workspaces(
                &connection.client,
                &desired,
                workspaces,
                preflight,
                regions
            ),
        );
        let mut observed = observed.map_err(PrepareError::Observe)?;
        // Only the answers this plan needs are waited for; the others are stopped.
        images.finish(&desired, &mut observed.workspaces).await;
        tracing::info!(
            requests = connection.client.stats.requests.load(Ordering::Relaxed),
            "observed"
        );
        Ok(Ready {
            observed,
            desired,
            manifest_digest,
            connection,
        })
    }
    .await;
    Prepared { loaded, ready }
}

/// Run `work` on a thread where blocking (file reads, hashing) is fine.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(resume_panic)
}

/// A task that panicked panics its waiter too, with the same payload.
fn resume_panic<T>(error: tokio::task::JoinError) -> T {
    std::panic::resume_unwind(error.into_panic())
}
