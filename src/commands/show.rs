//! `amlspec show PLANFILE`: a plan saved by `plan --out`, rendered again in any plan
//! format without reading Azure (the pull-request comment and the apply log from one
//! plan).

use std::process::ExitCode;

use super::plan::{exit_code, print_errors, print_plan};
use crate::plan;
use crate::settings::ShowSettings;

/// Saved plans larger than this are refused (a plan of 10,000 resources is ~20 MB).
const MAX_PLAN_BYTES: u64 = 256 * 1024 * 1024;

pub fn run(settings: ShowSettings) -> std::io::Result<ExitCode> {
    let path = &settings.path;
    let text = match read(path) {
        Ok(text) => text,
        Err(error) => {
            print_errors([error])?;
            return Ok(ExitCode::FAILURE);
        }
    };
    let plan = match plan::parse_saved(path, &text) {
        Ok(plan) => plan,
        Err(error) => {
            print_errors([error])?;
            return Ok(ExitCode::FAILURE);
        }
    };
    print_plan(&plan, settings.format)?;
    Ok(exit_code(&plan, settings.detailed_exitcode))
}

fn read(path: &std::path::Path) -> Result<String, String> {
    let metadata = std::fs::metadata(path)
        .map_err(|e| format!("cannot read the saved plan `{}`: {e}", path.display()))?;
    if !metadata.is_file() {
        return Err(format!("`{}` is not a file", path.display()));
    }
    if metadata.len() > MAX_PLAN_BYTES {
        return Err(format!(
            "`{}` is larger than a saved plan can be ({} MB)",
            path.display(),
            MAX_PLAN_BYTES / 1024 / 1024
        ));
    }
    std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the saved plan `{}`: {e}", path.display()))
}
