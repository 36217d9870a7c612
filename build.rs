//! Records the commit the binary is built from (for `tai_gateway_build_info`), read from `.git`
//! without running git; nothing when building outside a checkout.

use std::path::Path;

fn main() {
    let git = Path::new(".git");
    println!("cargo:rerun-if-changed=.git/HEAD");
    let Ok(head) = std::fs::read_to_string(git.join("HEAD")) else {
        return;
    };
    let head = head.trim();
    let commit = match head.strip_prefix("ref: ") {
        Some(reference) => {
            println!("cargo:rerun-if-changed=.git/{reference}");
            println!("cargo:rerun-if-changed=.git/packed-refs");
            std::fs::read_to_string(git.join(reference))
                .ok()
                .map(|c| c.trim().to_owned())
                .or_else(|| packed_ref(git, reference))
        }
        None => Some(head.to_owned()),
    };
    if let Some(commit) = commit.filter(|c| c.len() >= 12) {
        println!("cargo:rustc-env=TAI_GATEWAY_COMMIT={}", &commit[..12]);
    }
}

/// `reference`'s commit in `.git/packed-refs`.
fn packed_ref(git: &Path, reference: &str) -> Option<String> {
    let packed = std::fs::read_to_string(git.join("packed-refs")).ok()?;
    packed.lines().find_map(|line| {
        let (commit, name) = line.split_once(' ')?;
        (name == reference).then(|| commit.to_owned())
    })
}
