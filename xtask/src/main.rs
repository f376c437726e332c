//! Everyday recipes: `cargo xtask run`, `cargo xtask test`, `cargo xtask build-plugins`,
//! `cargo xtask chaos`.
//! Each installs what it needs (the wasm32-wasip2 target) so a fresh machine
//! with only rustup can run them.

mod modules;

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

const WASM_TARGET: &str = "wasm32-wasip2";
const PLUGIN_PROFILE: &str = "plugin";
/// The tool that builds Python plugins, pinned: its bindings follow its version.
const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";
/// The API fuzzer the tests run against the OpenAPI document, pinned.
const SCHEMATHESIS: &str = "schemathesis==4.32.5";
/// The contract Python plugins are built against.
const CONTRACT: &str = "wit/0.2.0";

fn main() {
    if let Err(error) = run() {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root();
    std::env::set_current_dir(&root)?;
    match args.first().map(String::as_str) {
        Some("build-plugins") => build_plugins(&root, &[]),
        Some("run") => {
            build_plugins(&root, &[])?;
            cargo(&["build", "--package", "inlet"])?;
            let serve_args = args[1..].iter().skip_while(|a| *a == "--");
            let status = Command::new(root.join("target/debug/inlet"))
                .arg("serve")
                .args(serve_args)
                .status()
                .context("starting target/debug/inlet")?;
            std::process::exit(status.code().unwrap_or(1));
        }
        Some("test") => {
            ensure_browser()?;
            // Built and linted at once (see `linted_build`), the plugins
            // for wasm32 first.
            build_plugins(&root, &linted_build())?;
            ensure_python_tool(&root, SCHEMATHESIS, "st")?;
            cargo(&["fmt", "--all", "--", "--check"])?;
            modules::check(&root.join("host/src"))?;
            // The default members: the host (unit, conformance and end-to-end
            // tests, the plugin kit's included) and xtask, every target built
            // (the benches too, so they are linted) before any test runs;
            // then, natively, the SDK's tests and doc examples and the
            // bundled plugins' unit tests.
            cargo_with(&["test", "--no-run", "--all-targets"], &linted_build())?;
            cargo_with(&["test"], &linted_build()).context("tests failed")?;
            let plugins = plugin_crates(&root.join("plugins"))?;
            let mut args = vec!["test", "--package", "inlet-plugin-sdk"];
            for (name, _) in &plugins {
                args.extend(["--package", name.as_str()]);
            }
            cargo_with(&args, &linted_build()).context("plugin tests failed")
        }
        Some("chaos") => {
            // The reliability harness in full (tests/chaos, RELIABILITY.md):
            // `cargo xtask chaos [cycles] [sqlite|postgres|sqlite,postgres]`.
            build_plugins(&root, &[])?;
            ensure_python_tool(&root, SCHEMATHESIS, "st")?;
            let cycles = args.get(1).cloned().unwrap_or_else(|| "100".into());
            let backends = args.get(2).cloned().unwrap_or_else(|| "sqlite,postgres".into());
            let env = [
                ("INLET_CHAOS_CYCLES", cycles),
                ("INLET_CHAOS_BACKENDS", backends),
                ("INLET_CHAOS_FAILOVER_SECONDS", "300".into()),
                ("INLET_FUZZ_EXAMPLES", "350".into()),
                ("INLET_FUZZ_MIN_CASES", "10000".into()),
            ];
            let jobs = ["test", "--package", "inlet", "--test", "jobs", "--", "--nocapture", "--test-threads", "1"];
            cargo_with(&[&jobs[..], &["crash_cycles", "killing_the_scheduling_leader"]].concat(), &env)?;
            let fuzz = ["test", "--package", "inlet", "--test", "admin_api", "--", "--nocapture", "schemathesis"];
            cargo_with(&fuzz, &env)
        }
        Some("schemathesis") => {
            // Installs the fuzzer if needed and prints its path (for the tests).
            println!("{}", ensure_python_tool(&root, SCHEMATHESIS, "st")?.display());
            Ok(())
        }
        Some("modules") => {
            if !modules::report(&root.join("host/src"))? {
                std::process::exit(1);
            }
            Ok(())
        }
        _ => {
            eprintln!(
                "usage: cargo xtask <run [serve args] | test | build-plugins | chaos [cycles] [backends] | modules>"
            );
            std::process::exit(2);
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

fn cargo(args: &[&str]) -> Result<()> {
    cargo_with(args, &[])
}

/// `cargo` with environment variables set for it.
fn cargo_with(args: &[&str], env: &[(&str, String)]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let shown: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v} ")).collect();
    eprintln!("$ {}cargo {}", shown.concat(), args.join(" "));
    let status = Command::new(cargo).args(args).envs(env.iter().map(|(k, v)| (k, v))).status()?;
    if !status.success() {
        bail!("cargo {} failed", args.join(" "));
    }
    Ok(())
}

/// Crates in a folder that build a plugin component: `(package name, dir)`.
fn plugin_crates(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut crates = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let manifest = path.join("Cargo.toml");
        if !manifest.exists() {
            continue;
        }
        let text = std::fs::read_to_string(&manifest)?;
        let name = text
            .lines()
            .find_map(|l| l.strip_prefix("name = \"").and_then(|rest| rest.strip_suffix('"')))
            .with_context(|| format!("no package name in {}", manifest.display()))?;
        crates.push((name.to_string(), path));
    }
    crates.sort();
    Ok(crates)
}

/// The Updates page's browser test drives headless Chromium through
/// chromedriver. Install Debian's packages when they are missing and we may;
/// otherwise say what is needed (or set INLET_CHROMIUM/INLET_CHROMEDRIVER).
fn ensure_browser() -> Result<()> {
    let on_path = |name: &str| Command::new(name).arg("--version").output().is_ok_and(|o| o.status.success());
    if std::env::var_os("INLET_CHROMEDRIVER").is_some() || (on_path("chromium") && on_path("chromedriver")) {
        return Ok(());
    }
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !root || !on_path("apt-get") {
        bail!(
            "the browser test needs chromium and chromedriver: install them (Debian: apt-get install chromium \
             chromium-driver) or set INLET_CHROMIUM and INLET_CHROMEDRIVER to their paths"
        );
    }
    let install = || {
        eprintln!("$ apt-get install chromium chromium-driver");
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", "chromium", "chromium-driver"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    // A fresh machine may have no package lists yet.
    let update = || Command::new("apt-get").arg("update").status().is_ok_and(|s| s.success());
    let installed = install() || (update() && install());
    if !installed {
        bail!("installing chromium and chromium-driver with apt-get failed");
    }
    Ok(())
}

fn ensure_wasm_target() -> Result<()> {
    let installed = Command::new("rustup").args(["target", "list", "--installed"]).output();
    match installed {
        Ok(out) if String::from_utf8_lossy(&out.stdout).lines().any(|l| l.trim() == WASM_TARGET) => Ok(()),
        Ok(_) => {
            eprintln!("installing the {WASM_TARGET} target");
            let status = Command::new("rustup").args(["target", "add", WASM_TARGET]).status()?;
            if !status.success() {
                bail!("rustup target add {WASM_TARGET} failed");
            }
            Ok(())
        }
        Err(_) => {
            bail!("rustup not found: install the {WASM_TARGET} target for your Rust toolchain")
        }
    }
}

/// Build every plugin crate for wasm32-wasip2 in one cargo call (cargo skips
/// unchanged ones), then copy the bundled plugins into `plugins/<id>.wasm` and
/// the test plugins into `target/test-plugins/`, only when the bytes changed so
/// a running host does not see a spurious replacement. `env` is the build's
/// environment (see `linted_build`).
fn build_plugins(root: &Path, env: &[(&str, String)]) -> Result<()> {
    ensure_wasm_target()?;
    let bundled = plugin_crates(&root.join("plugins"))?;
    let test_only = plugin_crates(&root.join("tests/plugins"))?;
    let mut args = vec!["build", "--quiet", "--target", WASM_TARGET, "--profile", PLUGIN_PROFILE];
    for (name, _) in bundled.iter().chain(&test_only) {
        args.extend(["--package", name.as_str()]);
    }
    cargo_with(&args, env)?;
    let built = root.join("target").join(WASM_TARGET).join(PLUGIN_PROFILE);
    let copy = |name: &str, prefix: &str, dest_dir: &Path| -> Result<()> {
        let artifact = built.join(format!("{}.wasm", name.replace('-', "_")));
        let id = name.strip_prefix(prefix).unwrap_or(name);
        std::fs::create_dir_all(dest_dir)?;
        let dest = dest_dir.join(format!("{id}.wasm"));
        let bytes = std::fs::read(&artifact).with_context(|| format!("reading {}", artifact.display()))?;
        if std::fs::read(&dest).ok().as_deref() != Some(&bytes[..]) {
            std::fs::write(&dest, &bytes)?;
            eprintln!("wrote {}", dest.display());
        }
        Ok(())
    };
    for (name, _) in &bundled {
        copy(name, "inlet-plugin-", &root.join("plugins"))?;
    }
    for (name, _) in &test_only {
        copy(name, "inlet-test-plugin-", &root.join("target/test-plugins"))?;
    }
    build_python_plugins(root)
}

/// Folders of `plugins/` holding a Python plugin (its `app.py`).
fn python_plugins(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.join("app.py").exists() {
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}

/// Build each Python plugin with componentize-py (installed into
/// target/tools/ on first use) into `plugins/<id>.wasm`, when its sources or
/// the contract changed since the last build.
fn build_python_plugins(root: &Path) -> Result<()> {
    let plugins = python_plugins(&root.join("plugins"))?;
    if plugins.is_empty() {
        return Ok(());
    }
    let tool = ensure_componentize_py(root)?;
    let built = root.join("target/python-plugins");
    std::fs::create_dir_all(&built)?;
    for dir in plugins {
        let id = dir.file_name().and_then(|n| n.to_str()).context("a plugin folder's name")?.to_string();
        let artifact = built.join(format!("{id}.wasm"));
        if !newer_than_sources(&artifact, &[dir.as_path(), &root.join(CONTRACT)])? {
            eprintln!("$ componentize-py componentize app -p {} (plugin {id})", dir.display());
            let status = Command::new(&tool)
                .args(["-d", CONTRACT, "-w", "plugin", "componentize", "app", "-p"])
                .arg(&dir)
                .arg("-o")
                .arg(&artifact)
                .status()
                .with_context(|| format!("running {}", tool.display()))?;
            if !status.success() {
                bail!("componentize-py failed for plugins/{id}");
            }
        }
        let bytes = std::fs::read(&artifact)?;
        let dest = root.join("plugins").join(format!("{id}.wasm"));
        if std::fs::read(&dest).ok().as_deref() != Some(&bytes[..]) {
            std::fs::write(&dest, &bytes)?;
            eprintln!("wrote {}", dest.display());
        }
    }
    Ok(())
}

/// componentize-py in a virtual environment of its own under target/tools/.
fn ensure_componentize_py(root: &Path) -> Result<PathBuf> {
    ensure_python_tool(root, COMPONENTIZE_PY, "componentize-py")
}

/// A Python tool, pinned by `spec` (`name==version`), in a virtualenv of its
/// own under `target/tools`, installed from PyPI on first use; returns the
/// path of its `command`.
fn ensure_python_tool(root: &Path, spec: &str, command: &str) -> Result<PathBuf> {
    let name = spec.split("==").next().unwrap_or(spec);
    let venv = root.join("target/tools").join(name);
    let tool = venv.join("bin").join(command);
    let marker = venv.join(spec);
    if tool.exists() && marker.exists() {
        return Ok(tool);
    }
    eprintln!("installing {spec} into {}", venv.display());
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let created = Command::new(&python).args(["-m", "venv"]).arg(&venv).status();
    if !created.is_ok_and(|s| s.success()) {
        bail!("`{python} -m venv` failed: {name} needs Python 3 with venv (Debian: python3-venv)");
    }
    let installed = Command::new(venv.join("bin/pip")).args(["install", "--quiet", spec]).status()?;
    if !installed.success() {
        bail!("pip install {spec} failed");
    }
    std::fs::write(marker, "")?;
    Ok(tool)
}

/// Whether `artifact` exists and is newer than every file under `sources`.
fn newer_than_sources(artifact: &Path, sources: &[&Path]) -> Result<bool> {
    let Ok(built) = std::fs::metadata(artifact).and_then(|m| m.modified()) else { return Ok(false) };
    let mut stack: Vec<PathBuf> = sources.iter().map(|p| p.to_path_buf()).collect();
    while let Some(path) = stack.pop() {
        let meta = std::fs::metadata(&path)?;
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path)? {
                let entry = entry?.path();
                // Cassettes and caches are not sources.
                if !matches!(entry.file_name().and_then(|n| n.to_str()), Some("tests" | "__pycache__")) {
                    stack.push(entry);
                }
            }
        } else if meta.modified()? > built {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The environment in which `cargo xtask test` builds: the workspace's own
/// crates are compiled by clippy-driver, which lints them as it compiles
/// them, warnings denied. A separate `cargo clippy` would first check every
/// dependency (wasmtime, cranelift, sqlx...) again, about seven minutes of
/// CI's forty. Cargo passes this on to the tests, so the builds they start
/// (`cargo xtask build-plugins`) match the one made here and redo nothing;
/// the scaffolded plugin the plugin kit's test builds is linted with it too.
fn linted_build() -> [(&'static str, String); 2] {
    [
        ("RUSTC_WORKSPACE_WRAPPER", "clippy-driver".into()),
        ("CLIPPY_ARGS", "-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__".into()),
    ]
}
