//! Compiles the example routers to WebAssembly and generates their path
//! constants (see `src/lib.rs`).
//!
//! The routers are built by a second cargo, in a target directory of their
//! own: the cargo running this script holds the lock on its target
//! directory until the script ends.

use std::env;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-unknown-unknown";
const PROFILE: &str = "wasm-release";

/// Variables of the outer build that would change or break the inner one.
const OUTER_ENV: &[&str] = &[
    "CARGO_ENCODED_RUSTFLAGS",
    "RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_BUILD_TARGET",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_BUILD_BUILD_DIR",
    "CARGO_MAKEFLAGS",
    "MAKEFLAGS",
    "MFLAGS",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_PRIMARY_PACKAGE",
];

struct Router {
    /// The folder name: `round-robin`.
    name: String,
    /// `dbroute-router-round-robin`.
    package: String,
    dir: PathBuf,
}

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let routers_dir = manifest_dir.parent().expect("example-routers/").to_path_buf();
    let workspace = routers_dir.parent().expect("the workspace root").to_path_buf();
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));

    let routers = find_routers(&routers_dir, &manifest_dir);
    for router in &routers {
        rerun_if_changed(&router.dir.join("Cargo.toml"));
        rerun_if_changed(&router.dir.join("src"));
    }
    rerun_if_changed(&routers_dir);
    rerun_if_changed(&workspace.join("router-sdk/Cargo.toml"));
    rerun_if_changed(&workspace.join("router-sdk/src"));
    rerun_if_changed(&workspace.join("Cargo.toml"));
    rerun_if_changed(&workspace.join("Cargo.lock"));
    rerun_if_changed(&workspace.join("rust-toolchain.toml"));
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_DIR");

    let target_dir = target_dir(&out_dir);
    build(&workspace, &target_dir, &routers);

    let wasm_dir = target_dir.join(TARGET).join(PROFILE);
    let mut code = String::new();
    for router in &routers {
        let wasm = wasm_dir.join(format!("{}.wasm", router.package.replace('-', "_")));
        assert!(wasm.is_file(), "the build did not produce {}", wasm.display());
        let path = wasm.to_str().expect("a UTF-8 target directory");
        writeln!(
            code,
            "/// The `{name}` router (`example-routers/{name}`), compiled: the absolute path of\n\
             /// its `.wasm` file.\n\
             pub const {constant}: &str = {path:?};\n",
            name = router.name,
            constant = constant(&router.name),
        )
        .unwrap();
    }
    code.push_str(
        "/// Every example router, in name order: `(name, path of the .wasm file)`.\n\
         pub fn all() -> &'static [(&'static str, &'static str)] {\n    &[\n",
    );
    for router in &routers {
        writeln!(code, "        ({:?}, {}),", router.name, constant(&router.name)).unwrap();
    }
    code.push_str("    ]\n}\n\n");
    code.push_str(
        "/// Calls `$mac!(name)` once for every example router, `name` being the\n\
         /// router's folder name in snake case (`round_robin`): for a test per router.\n\
         #[macro_export]\n\
         macro_rules! foreach_router {\n    ($mac:ident) => {\n",
    );
    for router in &routers {
        writeln!(code, "        $mac!({});", router.name.replace('-', "_")).unwrap();
    }
    code.push_str("    };\n}\n");
    fs::write(out_dir.join("routers.rs"), code).expect("writing routers.rs");
}

/// Every `example-routers/<name>/` with a `Cargo.toml`, but this crate.
fn find_routers(routers_dir: &Path, this_crate: &Path) -> Vec<Router> {
    let mut routers = Vec::new();
    for entry in fs::read_dir(routers_dir).expect("reading example-routers/") {
        let dir = entry.expect("reading example-routers/").path();
        let manifest = dir.join("Cargo.toml");
        if dir == this_crate || !manifest.is_file() {
            continue;
        }
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .expect("a UTF-8 folder name")
            .to_string();
        let package = format!("dbroute-router-{name}");
        let text = fs::read_to_string(&manifest).expect("reading a router's Cargo.toml");
        assert!(
            text.lines().any(|l| l.trim() == format!("name = \"{package}\"")),
            "{}: a router in example-routers/{name}/ must be the package `{package}`",
            manifest.display()
        );
        routers.push(Router { name, package, dir });
    }
    routers.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(!routers.is_empty(), "no router crate in {}", routers_dir.display());
    routers
}

/// `$CARGO_TARGET_DIR/wasm-routers` when the outer build's target directory
/// is known (shared by every build of the workspace, so the routers are
/// built once); otherwise a folder of this build's `OUT_DIR`.
fn target_dir(out_dir: &Path) -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR").map(PathBuf::from) {
        Some(dir) if dir.is_absolute() => dir.join("wasm-routers"),
        _ => out_dir.join("wasm-routers"),
    }
}

fn build(workspace: &Path, target_dir: &Path, routers: &[Router]) {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .arg("build")
        // The outer cargo has resolved and written the lock file of this same
        // workspace before running build scripts: it must already be right.
        .arg("--locked")
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        .args(["--target", TARGET, "--profile", PROFILE, "--color", "never"])
        .arg("--target-dir")
        .arg(target_dir);
    for router in routers {
        cmd.args(["-p", &router.package]);
    }
    for var in OUTER_ENV {
        cmd.env_remove(var);
    }
    let output = cmd.output().unwrap_or_else(|e| panic!("could not run {cmd:?}: {e}"));
    if !output.status.success() {
        panic!(
            "building the example routers for {TARGET} failed ({status})\ncommand: {cmd:?}\n\n{stderr}",
            status = output.status,
            stderr = String::from_utf8_lossy(&output.stderr),
        );
    }
}

fn constant(name: &str) -> String {
    name.replace('-', "_").to_uppercase()
}

fn rerun_if_changed(path: &Path) {
    println!("cargo:rerun-if-changed={}", path.display());
}
