//! `amlspec plan` against the emulator: full create plans, no changes once everything
//! exists, each kind of drift, blocked cases, authentication failures and faults.

use crate::azure::Local;

const PETS: &str = "specs/pets.yaml";

#[tokio::test(flavor = "multi_thread")]
async fn empty_subscription_plans_every_resource() {
    let azure = Local::start().await;
    let out = azure.run(&["plan", "--detailed-exitcode", PETS]).await;
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    insta::assert_snapshot!(out.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn everything_present_is_no_changes() {
    let azure = Local::start().await;
    let all = [
        "specs/pets.yaml",
        "specs/environments.yaml",
        "specs/distributed.yaml",
        "specs/multi-workspace",
        "tests/corpus/valid",
    ];
    azure.seed(&all).await;
    let out = azure
        .run(&[&["plan", "--detailed-exitcode"][..], &all[..]].concat())
        .await;
    assert_eq!(
        out.stdout, "No changes. 45 resources are up to date.\n",
        "{}",
        out.stderr
    );
    assert_eq!(out.code, 0);
    assert_eq!(out.stderr, "");
}
