//! Plan's preflight against the emulator's regions: a VM size not offered blocks a new
//! cluster (the how-to's retired STANDARD_NC6 among them), a quota too small to scale to
//! `max_nodes` warns with the numbers (the cluster's own nodes counted, the exact fit
//! allowed), a job that asks for more vCPUs than the quota allows at all is blocked, a
//! region that cannot be read is said, and `--skip-preflight` leaves the checks and
//! their reads out.

use amlspec::emulator::{Fault, FaultRule, FaultTarget};

use crate::cli::azure::Local;
use crate::cli::common::{edit, specs_copy};

const T4_FAMILY: &str = "standardNCASv3_T4Family";

/// pets.yaml in a copy of specs/, with `from` made `to`.
fn pets_with(from: &str, to: &str) -> (tempfile::TempDir, String) {
    let specs = specs_copy();
    let pets = specs.path().join("pets.yaml");
    edit(&pets, from, to);
    let path = pets.to_str().unwrap().to_string();
    (specs, path)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_retired_nc6_blocks_a_new_cluster_and_names_sizes_offered_today() {
    let azure = Local::start().await;
    let (_specs, pets) = pets_with("vm_size: Standard_NC4as_T4_v3", "vm_size: STANDARD_NC6");
    let out = azure.run(&["plan", "--detailed-exitcode", &pets]).await;
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains(
            "  ! cluster gpu-cluster\n      reason: vm size: STANDARD_NC6 is not offered to clusters in westeurope (retired, or not in this region); closest offered: Standard_NC6s_v3 (6 vCPUs, 1 GPU), Standard_NC4as_T4_v3 (4 vCPUs, 1 GPU), Standard_NC8as_T4_v3 (8 vCPUs, 1 GPU)\n"
        ),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("1 blocked"), "{}", out.stdout);
    // Apply refuses it before sending anything.
    azure.emulator.admin().reset_traffic();
    let out = azure.run(&["apply", "--auto-approve", &pets]).await;
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert_eq!(azure.emulator.admin().traffic().arm_writes(), 0);
    // A size withdrawn from the region is refused alike, in any case.
    azure
        .emulator
        .admin()
        .set_vm_size_available("West Europe", "standard_nc4as_t4_v3", false)
        .unwrap();
    let out = azure.run(&["plan", "specs/pets.yaml"]).await;
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stdout
            .contains("Standard_NC4as_T4_v3 is not offered to clusters in westeurope"),
        "{}",
        out.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_quota_exactly_used_is_enough_and_one_vcpu_less_warns_with_the_numbers() {
    let azure = Local::start().await;
    let admin = azure.emulator.admin();
    // max_nodes 4 x 4 vCPUs = 16: a limit of 16 fits exactly.
    admin.set_family_quota("westeurope", T4_FAMILY, 16);
    let out = azure.run(&["plan", "specs/pets.yaml"]).await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains(
            "      quota ok: max_nodes 4 x 4 vCPUs = 16 vCPUs; 16 of 16 free in standardNCASv3_T4Family, 100 of 100 in westeurope\n"
        ),
        "{}",
        out.stdout
    );
    admin.set_family_quota("westeurope", T4_FAMILY, 15);
    let out = azure
        .run(&["plan", "--detailed-exitcode", "specs/pets.yaml"])
        .await;
    // A warning: the cluster can still be made, it just cannot grow as far.
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains(
            "      quota warning: max_nodes 4 x 4 vCPUs = 16 vCPUs, but standardNCASv3_T4Family has 15 of 15 free (in westeurope): the cluster cannot scale to max_nodes; ask for more quota (Azure portal: Quotas, Machine learning) or lower max_nodes\n"
        ),
        "{}",
        out.stdout
    );
    // The regional total counts too, and both are said at once.
    admin.set_total_cores_quota("westeurope", 12);
    let out = azure.run(&["plan", "specs/pets.yaml"]).await;
    assert!(
        out.stdout.contains(
            "but standardNCASv3_T4Family has 15 of 15 free and the region has 12 of 12 free (in westeurope)"
        ),
        "{}",
        out.stdout
    );
    let out = azure
        .run(&["plan", "--format", "json", "specs/pets.yaml"])
        .await;
    let plan: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let cluster = plan["workspaces"][0]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "cluster")
        .unwrap();
    assert_eq!(cluster["checks"][0]["check"], "vm_size");
    assert_eq!(cluster["checks"][0]["outcome"], "ok");
    assert_eq!(cluster["checks"][1]["check"], "quota");
    assert_eq!(cluster["checks"][1]["outcome"], "warning");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_growing_cluster_counts_its_own_nodes_as_free_to_it() {
    let azure = Local::start().await;
    let ws = azure.seed(&["specs/pets.yaml"]).await;
    let ws = &ws.workspaces[0];
    let admin = azure.emulator.admin();
    // The seeded cluster (max 4) holds 2 nodes (8 vCPUs) of a family limited to 16:
    // growing to 6 nodes needs 24, and 16 - 8 + 8 = 16 are free to it.
    admin
        .set_current_nodes(ws.clusters[0].id.as_str(), 2)
        .unwrap();
    admin.set_family_quota("westeurope", T4_FAMILY, 16);
    let (_specs, pets) = pets_with("max_nodes: 4", "max_nodes: 6");
    let out = azure.run(&["plan", &pets]).await;
    assert!(
        out.stdout.contains(
            "quota warning: max_nodes 6 x 4 vCPUs = 24 vCPUs, but standardNCASv3_T4Family has 16 of 16 free"
        ),
        "{}",
        out.stdout
    );
    // To 4 nodes: 16, the whole limit, counting its own 8.
    let (_specs, pets) = pets_with(
        "idle_seconds_before_scale_down: 1800",
        "idle_seconds_before_scale_down: 1200",
    );
    let out = azure.run(&["plan", &pets]).await;
    assert!(
        !out.stdout.contains("quota"),
        "unchanged max_nodes: {}",
        out.stdout
    );
    admin.set_family_quota("westeurope", T4_FAMILY, 20);
    let (_specs, pets) = pets_with("max_nodes: 4", "max_nodes: 5");
    let out = azure.run(&["plan", &pets]).await;
    assert!(
        out.stdout.contains(
            "quota ok: max_nodes 5 x 4 vCPUs = 20 vCPUs; 20 of 20 free in standardNCASv3_T4Family"
        ),
        "{}",
        out.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_bigger_than_the_quota_allows_at_all_is_blocked() {
    let azure = Local::start().await;
    azure
        .emulator
        .admin()
        .set_family_quota("westeurope", T4_FAMILY, 8);
    let (_specs, pets) = pets_with("node_count: 1", "node_count: 3");
    let out = azure.run(&["plan", &pets]).await;
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains(
            "      reason: quota: node_count 3 x 4 vCPUs = 12 vCPUs, more than the quota allows at all (8 for standardNCASv3_T4Family in westeurope): the job would never start; ask for more quota or lower node_count\n"
        ),
        "{}",
        out.stdout
    );
    // Two nodes are exactly the limit: it may start.
    let (_specs, pets) = pets_with("node_count: 1", "node_count: 2");
    let out = azure.run(&["plan", &pets]).await;
    assert!(
        out.stdout
            .contains("quota ok: node_count 2 x 4 vCPUs = 8 vCPUs, within the limit of 8"),
        "{}",
        out.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_region_that_cannot_be_read_is_said_and_blocks_nothing() {
    let azure = Local::start().await;
    azure.emulator.admin().add_fault(FaultRule {
        path_contains: Some("/locations/westeurope/usages".into()),
        target: FaultTarget::Arm,
        ..FaultRule::always(Fault::ServerError { status: 500 })
    });
    let out = azure
        .run(&["plan", "--max-retries", "0", "specs/pets.yaml"])
        .await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains(
            "      vm size warning: not checked: what westeurope offers could not be read: "
        ),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(
            "      quota warning: not checked: what westeurope offers could not be read: "
        ),
        "{}",
        out.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn skip_preflight_leaves_out_the_checks_named_and_their_reads() {
    let azure = Local::start().await;
    let admin = azure.emulator.admin();
    let (specs, pets) = pets_with("vm_size: Standard_NC4as_T4_v3", "vm_size: STANDARD_NC6");
    // The workspace is there, so every read of its children is made: the counts below
    // differ by the region reads alone. (The children of a missing workspace are read
    // only until the workspace is known to be missing, so their count varies.)
    let workspace_only = specs.path().join("workspace.yaml");
    let pets_text = std::fs::read_to_string(&pets).unwrap();
    let end = pets_text.find("\nregistries:").unwrap();
    std::fs::write(&workspace_only, &pets_text[..end]).unwrap();
    azure.seed(&[workspace_only.to_str().unwrap()]).await;
    let gets = || azure.emulator.admin().traffic().arm("GET");
    admin.reset_traffic();
    let out = azure.run(&["plan", &pets]).await;
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    let with_checks = gets();
    admin.reset_traffic();
    let out = azure.run(&["plan", "--skip-preflight", &pets]).await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(!out.stdout.contains("vm size"), "{}", out.stdout);
    assert!(!out.stdout.contains("quota"), "{}", out.stdout);
    // The region's VM sizes, usages and quotas are not read.
    assert_eq!(gets(), with_checks - 3);
    // Only the VM size: the quota is still checked (for the job), the size is not.
    admin.reset_traffic();
    let out = azure
        .run(&["plan", "--skip-preflight=vm-size", &pets])
        .await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(!out.stdout.contains("vm size"), "{}", out.stdout);
    assert_eq!(gets(), with_checks);
    // An unknown check is a usage error.
    let out = azure.run(&["plan", "--skip-preflight=vmsize", &pets]).await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("vm-size"), "{}", out.stderr);
}

// ------------------------------------------------------------------------------ images

const REGISTRY: &str = "myregistry.azurecr.io";

/// The line an entry's image check prints, if any.
fn image_line(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("image ") || l.contains("reason: image:"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_environment_s_image_is_pullable_and_its_digest_shown_and_a_moved_tag_shows() {
    let azure = Local::start().await;
    let admin = azure.emulator.admin();
    let digest = admin
        .image_digest(REGISTRY, "fastdotai/fastai2", "latest")
        .unwrap();
    let out = azure.run(&["plan", "specs/pets.yaml"]).await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(
        image_line(&out.stdout),
        [format!("      image ok: pullable, digest {digest}").as_str()],
        "{}",
        out.stdout
    );
    // `latest` moves: the plan shows the new digest.
    let moved = admin
        .push_image(REGISTRY, "fastdotai/fastai2", "latest")
        .unwrap();
    assert_ne!(moved, digest);
    let out = azure
        .run(&["plan", "--format", "json", "specs/pets.yaml"])
        .await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let plan: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let env = plan["workspaces"][0]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "environment")
        .unwrap();
    assert_eq!(
        env["checks"],
        serde_json::json!([{
            "check": "image",
            "outcome": "ok",
            "message": format!("pullable, digest {moved}"),
        }])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_tag_blocks_the_environment_with_the_registry_s_own_error() {
    let azure = Local::start().await;
    let (_specs, pets) = pets_with("fastdotai/fastai2:latest", "fastdotai/fastai2:nightly");
    let out = azure.run(&["plan", "--detailed-exitcode", &pets]).await;
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains(
            "      reason: image: no such tag or digest: MANIFEST_UNKNOWN: manifest tagged by \"nightly\" is not found; push the image, or correct the reference\n"
        ),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("1 blocked"), "{}", out.stdout);
    // A missing repository is told apart.
    let (_specs, pets) = pets_with("fastdotai/fastai2:latest", "fastdotai/fastai3:latest");
    let out = azure.run(&["plan", &pets]).await;
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("reason: image: no such repository: NAME_UNKNOWN: "),
        "{}",
        out.stdout
    );
    // Apply refuses the blocked plan before writing anything.
    azure.emulator.admin().reset_traffic();
    let out = azure.run(&["apply", "--auto-approve", &pets]).await;
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert_eq!(azure.emulator.admin().traffic().arm_writes(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_blocks_and_names_the_variable_never_the_password() {
    let azure = Local::start().await;
    let wrong = "wrong-Pa55word-never-printed";
    let test = azure
        .cli(&["plan", "specs/pets.yaml"])
        .env("ACR_PASSWORD", wrong)
        .secret(wrong);
    let out = crate::cli::azure::run_test(test).await;
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains(
            "reason: image: the registry refused the credentials: UNAUTHORIZED: authentication required, visit https://aka.ms/acr/authorization for more information.; check registry `myregistry`'s username `username` and the password in $ACR_PASSWORD\n"
        ),
        "{}",
        out.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_that_may_not_read_the_repository_block_as_denied() {
    let azure = Local::start().await;
    azure
        .emulator
        .admin()
        .set_registry_user(
            REGISTRY,
            amlspec::emulator::RegistryUser {
                username: "username".into(),
                password: crate::cli::common::PASSWORD.into(),
                repositories: Some(vec!["team/img".into()]),
            },
        )
        .unwrap();
    let out = azure.run(&["plan", "specs/pets.yaml"]).await;
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    // A blocked entry says why in its reason.
    let lines = image_line(&out.stdout);
    assert_eq!(lines.len(), 1, "{}", out.stdout);
    assert!(
        lines[0].starts_with("      reason: image: the credentials may not pull this repository: ")
            && lines[0].ends_with(
                "; give `username` pull access to the repository (for Azure Container Registry, a scope map with content/read)"
            ),
        "{}",
        out.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_registry_is_a_warning_not_a_block() {
    let azure = Local::start().await;
    azure.emulator.admin().set_faults(
        vec![FaultRule::always(Fault::ServerError { status: 503 }).on(FaultTarget::Registry)],
        None,
    );
    let out = azure
        .run(&["plan", "--detailed-exitcode", "specs/pets.yaml"])
        .await;
    // Changes, none blocked.
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    let lines = image_line(&out.stdout);
    assert_eq!(lines.len(), 1, "{}", out.stdout);
    assert!(
        lines[0].starts_with("      image warning: the registry could not be asked: ")
            && lines[0].contains("503")
            && lines[0].ends_with(
                "; Azure pulls it only when a job starts (a registry behind a firewall cannot be asked from here)"
            ),
        "{}",
        out.stdout
    );
    // A registry the emulator does not serve (as one no DNS knows) warns alike.
    azure.emulator.admin().clear_faults();
    assert!(azure.emulator.admin().remove_registry(REGISTRY));
    let out = azure.run(&["plan", "specs/pets.yaml"]).await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let lines = image_line(&out.stdout);
    assert_eq!(lines.len(), 1, "{}", out.stdout);
    assert!(
        lines[0].starts_with("      image warning: the registry could not be asked: "),
        "{}",
        out.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn public_images_are_checked_anonymously() {
    let azure = Local::start().await;
    let spec = |image: &str| {
        format!(
            "workspace:\n  name: wsx\n  subscription_id: 00000000-0000-0000-0000-000000000001\n  resource_group: rg\n  location: westeurope\n  create_if_missing: true\nenvironments:\n  - name: base\n    image: {image}\n    user_managed_dependencies: true\n"
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spec.yaml");
    let digest = azure
        .emulator
        .admin()
        .image_digest("registry-1.docker.io", "library/ubuntu", "22.04")
        .unwrap();
    std::fs::write(&path, spec("ubuntu:22.04")).unwrap();
    let out = azure.run(&["plan", path.to_str().unwrap()]).await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(
        image_line(&out.stdout),
        [format!("      image ok: pullable, digest {digest}").as_str()]
    );
    std::fs::write(
        &path,
        spec("mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:20991231"),
    )
    .unwrap();
    let out = azure.run(&["plan", path.to_str().unwrap()]).await;
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("reason: image: no such tag or digest: MANIFEST_UNKNOWN"),
        "{}",
        out.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_job_in_an_existing_environment_is_checked_and_a_settled_plan_waits_for_no_registry()
{
    let azure = Local::start().await;
    azure.seed(&["specs/pets.yaml"]).await;
    // Settled: nothing will pull, so no answer is waited for, even from a registry that
    // never answers, and nothing is said.
    azure.emulator.admin().set_faults(
        vec![FaultRule::always(Fault::ServerError { status: 503 }).on(FaultTarget::Registry)],
        None,
    );
    let out = azure.run(&["-vv", "plan", "specs/pets.yaml"]).await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("No changes."), "{}", out.stdout);
    assert!(
        out.stderr
            .contains("waiting for the image answers this plan needs needed=0 stopped=1"),
        "{}",
        out.stderr
    );
    azure.emulator.admin().clear_faults();
    // A new run of the job: the job's entry names the image it will pull.
    let (_specs, pets) = pets_with("--epochs 5", "--epochs 6");
    let out = azure.run(&["plan", &pets]).await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let digest = azure
        .emulator
        .admin()
        .image_digest(REGISTRY, "fastdotai/fastai2", "latest")
        .unwrap();
    assert_eq!(
        image_line(&out.stdout),
        [format!(
            "      image ok: myregistry.azurecr.io/fastdotai/fastai2:latest pullable, digest {digest}"
        )
        .as_str()],
        "{}",
        out.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn skip_preflight_image_leaves_the_registries_unasked() {
    let azure = Local::start().await;
    let (_specs, pets) = pets_with("fastdotai/fastai2:latest", "fastdotai/fastai2:nightly");
    let out = azure.run(&["plan", "--skip-preflight=image", &pets]).await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(image_line(&out.stdout).is_empty(), "{}", out.stdout);
    // The other checks are still made.
    assert!(out.stdout.contains("vm size ok:"), "{}", out.stdout);
    assert!(
        azure.emulator.admin().traffic().registry.is_empty(),
        "{:?}",
        azure.emulator.admin().traffic().registry
    );
    let out = azure
        .run(&["plan", "--skip-preflight=vm-size,quota", &pets])
        .await;
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(!out.stdout.contains("vm size"), "{}", out.stdout);
}
