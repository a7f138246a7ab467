//! Observe reads a workspace's children alongside the workspace itself: one round trip,
//! not two. Each test holds the workspace's read back until the children's reads have
//! reached the emulator, so neither test can pass on a reader that waits for the
//! workspace first (it would give up waiting instead).

use amlspec::azure::client::ClientSettings;
use amlspec::desired::Desired;
use amlspec::observe::{self, Live, Preflight};
use amlspec::ops::connect::client_for_emulator;

use crate::cli::azure::{Local, load, wait_until};

/// How many reads of `desired`'s first workspace's children are GETs, and how many are
/// POSTs (a registry connection is read by `listsecrets`).
fn child_reads(desired: &Desired) -> (u64, u64) {
    let ws = &desired.workspaces[0];
    let gets = ws.environments.len()
        + ws.existing_environments.len()
        + ws.clusters.len()
        + ws.codes.len()
        + ws.jobs.len();
    (gets as u64, ws.registries.len() as u64)
}

/// Observe `desired` with its workspace's read held back until the emulator has answered
/// every read of its children, then let go.
async fn observe_holding_the_workspace(
    azure: &Local,
    desired: &Desired,
) -> Result<observe::Observed, Vec<amlspec::azure::client::ArmError>> {
    let client = client_for_emulator(&azure.emulator, ClientSettings::default()).unwrap();
    let admin = azure.emulator.admin();
    admin.reset_traffic();
    let (gets, posts) = child_reads(desired);
    assert!(
        gets >= 4 && posts >= 1,
        "the spec has children of each kind"
    );
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let id = desired.workspaces[0].id.clone();
    let held = async {
        released.await.expect("released");
        observe::read_workspace(&client, &id).await
    };
    let observing =
        observe::observe_workspaces(&client, desired, vec![held], Preflight::NONE, async {
            Vec::new()
        });
    let watching = async {
        wait_until(|| async {
            let traffic = admin.traffic();
            traffic.arm("GET") >= gets && traffic.arm("POST") >= posts
        })
        .await;
        // Nothing but the children so far: the workspace itself is still held.
        let traffic = admin.traffic();
        assert_eq!((traffic.arm("GET"), traffic.arm("POST")), (gets, posts));
        release.send(()).expect("the read waits");
    };
    let (observed, ()) = tokio::join!(observing, watching);
    observed
}

#[tokio::test(flavor = "multi_thread")]
async fn a_workspaces_children_are_read_while_the_workspace_is() {
    let azure = Local::start().await;
    let desired = azure.seed(&["specs/pets.yaml"]).await;
    let observed = observe_holding_the_workspace(&azure, &desired)
        .await
        .expect("everything is read");
    let ws = &observed.workspaces[0];
    assert!(matches!(ws.workspace, Live::Present(_)));
    assert!(ws.registries.iter().all(|r| matches!(r, Live::Present(_))));
    assert!(
        ws.environments
            .iter()
            .all(|e| matches!(e, Live::Present(_)))
    );
    assert!(ws.clusters.iter().all(|c| matches!(c, Live::Present(_))));
    assert!(ws.codes.iter().all(|c| matches!(c, Live::Present(_))));
    assert!(ws.jobs.iter().all(|j| matches!(j, Live::Present(_))));
}

/// The children of a workspace that turns out missing answer 404s (some of them errors
/// to their reader: a missing resource group, a list under a missing parent). Those
/// answers are dropped: the workspace is missing, so its children are too.
#[tokio::test(flavor = "multi_thread")]
async fn the_childrens_answers_are_dropped_when_the_workspace_is_missing() {
    let azure = Local::start().await;
    let desired = load(&["specs/pets.yaml"]);
    let observed = observe_holding_the_workspace(&azure, &desired)
        .await
        .expect("a missing workspace is no error");
    let ws = &observed.workspaces[0];
    assert_eq!(ws.workspace, Live::Missing);
    assert_eq!(ws.resource_group_exists, Some(false));
    assert!(ws.registries.iter().all(|r| *r == Live::NotRead));
    assert!(ws.environments.iter().all(|e| *e == Live::NotRead));
    assert!(ws.clusters.iter().all(|c| *c == Live::NotRead));
    assert!(ws.codes.iter().all(|c| *c == Live::NotRead));
    assert!(ws.jobs.iter().all(|j| *j == Live::NotRead));
}
