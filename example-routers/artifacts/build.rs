//! Compiles the example routers to WebAssembly and generates their path
//! constants (see `src/lib.rs`).
//!
//! The routers are built by a second cargo, in a target directory of their
//! own: the cargo running this script holds the lock on its target
//! directory until the script ends.
//!
//! The reference routers in other languages (`example-routers/c`, `zig`,
//! `assemblyscript`) are built meanwhile by their own `build.sh OUT_DIR`,
//! when their toolchain is installed: a script that exits with 77 says its
//! toolchain is missing (the reason on stderr), and the language is listed
//! by `skipped()` instead of failing the build; any other failure fails it.
//! Nothing is installed here: `.ci/run` (or each folder's `install.sh`)
//! does that. The hand-written WAT router needs no build.

use std::env;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;

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

/// A reference router in another language, built by `<folder>/build.sh`.
struct Foreign {
    /// The language, as `skipped()` and the tests name it.
    lang: &'static str,
    /// Its folder in `example-routers/`.
    folder: &'static str,
    /// The file its `build.sh OUT_DIR` makes in `OUT_DIR`.
    file: &'static str,
    /// The constant holding its path.
    constant: &'static str,
    /// For the constant's doc comment.
    title: &'static str,
    /// Its routing-by-lag router (ABI 1.2, `lag-cases.json`), when it has
    /// one: the file its `build.sh` makes too, and the constant.
    lag: Option<(&'static str, &'static str)>,
    /// Its router that misbehaves on purpose (a component's, for the
    /// host's fault tests), when it has one: the file, and the constant.
    hostile: Option<(&'static str, &'static str)>,
}

const FOREIGN: &[Foreign] = &[
    Foreign {
        lang: "c",
        folder: "c",
        file: "c-reference.wasm",
        constant: "C_REFERENCE",
        title: "freestanding C (clang and wasm-ld)",
        lag: Some(("c-lag.wasm", "C_LAG")),
        hostile: None,
    },
    Foreign {
        lang: "zig",
        folder: "zig",
        file: "zig-reference.wasm",
        constant: "ZIG_REFERENCE",
        title: "Zig (the `ziglang` package of PyPI)",
        lag: Some(("zig-lag.wasm", "ZIG_LAG")),
        hostile: None,
    },
    Foreign {
        lang: "assemblyscript",
        folder: "assemblyscript",
        file: "assemblyscript-reference.wasm",
        constant: "ASSEMBLYSCRIPT_REFERENCE",
        title: "AssemblyScript (the `assemblyscript` package of npm)",
        lag: Some(("assemblyscript-lag.wasm", "ASSEMBLYSCRIPT_LAG")),
        hostile: None,
    },
    Foreign {
        lang: "python",
        folder: "python",
        file: "python-reference.wasm",
        constant: "PYTHON_REFERENCE",
        title: "Python, as a component (componentize-py, from PyPI)",
        lag: None,
        hostile: Some(("python-hostile.wasm", "PYTHON_HOSTILE")),
    },
    Foreign {
        lang: "javascript",
        folder: "javascript",
        file: "javascript-reference.wasm",
        constant: "JAVASCRIPT_REFERENCE",
        title: "JavaScript, as a component (componentize-js and jco, from npm)",
        lag: None,
        hostile: Some(("javascript-hostile.wasm", "JAVASCRIPT_HOSTILE")),
    },
    Foreign {
        lang: "rust-component",
        folder: "rust-component",
        file: "rust-component-reference.wasm",
        constant: "RUST_COMPONENT_REFERENCE",
        title: "Rust, as a component (wit-bindgen, for wasm32-wasip2)",
        lag: None,
        hostile: None,
    },
];

/// Exit status of a `build.sh` whose toolchain is missing.
const EXIT_MISSING_TOOLCHAIN: i32 = 77;

/// Variables that change what the language builds find (or how the tests
/// treat a missing toolchain).
const FOREIGN_ENV: &[&str] = &[
    "DBROUTE_REQUIRE_ALL_LANGUAGES",
    "PATH",
    "HOME",
    "CLANG",
    "WASM_LD",
    "ZIG",
    "DBROUTE_ZIG_VENV",
    "DBROUTE_PYTHON_VENV",
    "COMPONENTIZE_PY",
];

/// What became of one foreign router.
enum Outcome {
    Built(PathBuf),
    Skipped(String),
}

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
    // The components' contract.
    rerun_if_changed(&workspace.join("wit"));
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_DIR");
    for foreign in FOREIGN {
        rerun_if_changed(&routers_dir.join(foreign.folder));
    }
    rerun_if_changed(&routers_dir.join("wat"));
    rerun_if_changed(&routers_dir.join("reference-cases.json"));
    rerun_if_changed(&routers_dir.join("lag-cases.json"));
    for var in FOREIGN_ENV {
        println!("cargo:rerun-if-env-changed={var}");
    }

    let target_dir = target_dir(&out_dir);
    // The other languages build while cargo builds the Rust routers.
    let outcomes: Vec<Outcome> = thread::scope(|scope| {
        let builds: Vec<_> = FOREIGN
            .iter()
            .map(|foreign| {
                let (routers_dir, out_dir) = (&routers_dir, &out_dir);
                scope.spawn(move || build_foreign(routers_dir, out_dir, foreign))
            })
            .collect();
        build(&workspace, &target_dir, &routers);
        builds
            .into_iter()
            .map(|b| b.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .collect()
    });

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
    code.push_str("    };\n}\n\n");
    write_foreign(&mut code, &routers_dir, &outcomes);
    fs::write(out_dir.join("routers.rs"), code).expect("writing routers.rs");
}

/// Runs `example-routers/<folder>/build.sh OUT_DIR/<folder>`.
fn build_foreign(routers_dir: &Path, out_dir: &Path, foreign: &Foreign) -> Outcome {
    let script = routers_dir.join(foreign.folder).join("build.sh");
    let dest = out_dir.join(foreign.folder);
    let mut cmd = Command::new("bash");
    cmd.arg(&script)
        .arg(&dest)
        .current_dir(routers_dir.join(foreign.folder));
    for var in OUTER_ENV {
        cmd.env_remove(var);
    }
    let output = match cmd.output() {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Outcome::Skipped(format!("bash not found, so {} could not run", script.display()));
        }
        Err(e) => panic!("could not run {cmd:?}: {e}"),
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    match output.status.code() {
        Some(0) => {
            let others = foreign.lag.iter().chain(&foreign.hostile).map(|(file, _)| *file);
            for file in std::iter::once(foreign.file).chain(others) {
                let wasm = dest.join(file);
                assert!(
                    wasm.is_file(),
                    "{} did not produce {}",
                    script.display(),
                    wasm.display()
                );
            }
            Outcome::Built(dest.join(foreign.file))
        }
        Some(EXIT_MISSING_TOOLCHAIN) => {
            let reason = stderr
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("toolchain missing");
            println!("cargo:warning=skipped the {} reference router: {reason}", foreign.lang);
            Outcome::Skipped(reason.trim().to_owned())
        }
        _ => panic!(
            "building the {} reference router failed ({status})\ncommand: {cmd:?}\n\n{stdout}{stderr}",
            foreign.lang,
            status = output.status,
            stdout = String::from_utf8_lossy(&output.stdout),
        ),
    }
}

/// The constants and functions of the routers in other languages.
fn write_foreign(code: &mut String, routers_dir: &Path, outcomes: &[Outcome]) {
    let utf8 = |p: &Path| p.to_str().expect("a UTF-8 path").to_owned();
    for (foreign, outcome) in FOREIGN.iter().zip(outcomes) {
        let (title, folder) = (foreign.title, foreign.folder);
        // The path of one of the language's `.wasm` files, when it built.
        let path_of = |file: Option<&str>| match outcome {
            Outcome::Built(path) => {
                let path = file.map_or_else(|| path.clone(), |file| path.with_file_name(file));
                format!("Some({:?})", utf8(&path))
            }
            Outcome::Skipped(_) => "None".to_owned(),
        };
        let built = "the absolute path of its `.wasm` file, or\n\
                     /// `None` when its toolchain was missing (see [`skipped`])";
        let mut constant = |doc: String, name: &str, file: Option<&str>| {
            let value = path_of(file);
            writeln!(
                code,
                "{doc}:\n/// {built}.\npub const {name}: Option<&str> = {value};\n"
            )
            .unwrap();
        };
        constant(
            format!("/// The reference policy in {title}, `example-routers/{folder}`,\n/// built by its `build.sh`"),
            foreign.constant,
            None,
        );
        if let Some((file, name)) = foreign.lag {
            constant(
                format!(
                    "/// Routing by replica lag (ABI 1.2) in {title}, `example-routers/{folder}`,\n\
                     /// built by its `build.sh`"
                ),
                name,
                Some(file),
            );
        }
        if let Some((file, name)) = foreign.hostile {
            constant(
                format!(
                    "/// A router in {title} that misbehaves on purpose, as its configuration's\n\
                     /// `mode` says (`example-routers/{folder}`), for the host's fault tests"
                ),
                name,
                Some(file),
            );
        }
    }
    writeln!(
        code,
        "/// The simplest router, hand-written in WebAssembly text\n\
         /// (`example-routers/wat/simple.wat`: reads to `replica`, writes to\n\
         /// `default`, nothing else): the absolute path of the `.wat` file, which\n\
         /// the host compiles itself.\n\
         pub const WAT_SIMPLE: &str = {:?};\n\n\
         /// The reference policy's cases (`example-routers/reference-cases.json`):\n\
         /// the absolute path of the JSON file.\n\
         pub const REFERENCE_CASES: &str = {:?};\n\n\
         /// The cases of routing by replica lag (`example-routers/lag-cases.json`):\n\
         /// the absolute path of the JSON file.\n\
         pub const LAG_CASES: &str = {:?};\n",
        utf8(&routers_dir.join("wat/simple.wat")),
        utf8(&routers_dir.join("reference-cases.json")),
        utf8(&routers_dir.join("lag-cases.json")),
    )
    .unwrap();
    code.push_str(
        "/// The routing-by-lag router of each language that has one: `(language,\n\
         /// path)`, the path `None` when the language was skipped.\n\
         pub fn lag_languages() -> &'static [(&'static str, Option<&'static str>)] {\n    &[\n        (\"rust\", Some(LAG)),\n",
    );
    for foreign in FOREIGN {
        if let Some((_, constant)) = foreign.lag {
            writeln!(code, "        ({:?}, {constant}),", foreign.lang).unwrap();
        }
    }
    code.push_str("    ]\n}\n\n");
    code.push_str(
        "/// The router of each language: `(language, path)`, the path `None` when\n\
         /// the language was skipped. `rust` and `wat` are always there; `wat`\n\
         /// implements only part of the reference policy.\n\
         pub fn languages() -> &'static [(&'static str, Option<&'static str>)] {\n    &[\n        (\"rust\", Some(REFERENCE)),\n",
    );
    for foreign in FOREIGN {
        writeln!(code, "        ({:?}, {}),", foreign.lang, foreign.constant).unwrap();
    }
    code.push_str("        (\"wat\", Some(WAT_SIMPLE)),\n    ]\n}\n\n");
    code.push_str(
        "/// The languages whose reference router was not built because their\n\
         /// toolchain is missing: `(language, reason)`.\n\
         pub fn skipped() -> &'static [(&'static str, &'static str)] {\n    &[\n",
    );
    for (foreign, outcome) in FOREIGN.iter().zip(outcomes) {
        if let Outcome::Skipped(reason) = outcome {
            writeln!(code, "        ({:?}, {reason:?}),", foreign.lang).unwrap();
        }
    }
    code.push_str("    ]\n}\n");
}

/// Every `example-routers/<name>/` with a `Cargo.toml`, but this crate and
/// the crates that are a workspace of their own (`rust-component`, built for
/// wasm32-wasip2 by its `build.sh`).
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
        if text.lines().any(|l| l.trim() == "[workspace]") {
            continue;
        }
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
