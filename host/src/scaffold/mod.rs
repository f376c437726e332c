//! `inlet plugin new`: a plugin project of its own (outside any workspace)
//! that builds with one command and comes with an offline test: a sample
//! paginated REST integration, its cassette and its expected records.

use crate::runtime::registry::is_id;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

/// The languages a project can be started in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Language {
    Rust,
    /// Built with componentize-py.
    Python,
}

/// Where the project takes the SDK crate from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SdkSource {
    /// A checkout of inlet's `plugin-sdk` folder.
    Path(PathBuf),
    /// A version on crates.io.
    Version(String),
}

impl SdkSource {
    /// The SDK beside the sources this binary was built from, when they are
    /// still there; else the published crate of this version.
    pub fn default_for_this_build() -> SdkSource {
        let beside = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugin-sdk");
        match beside.canonicalize() {
            Ok(path) if path.join("Cargo.toml").exists() => SdkSource::Path(path),
            _ => SdkSource::Version(env!("CARGO_PKG_VERSION").to_string()),
        }
    }

    fn dependency(&self) -> String {
        match self {
            SdkSource::Path(path) => format!("{{ path = {:?} }}", path.display().to_string()),
            SdkSource::Version(version) => format!("{version:?}"),
        }
    }
}

/// A project's files: path inside the project, contents with `{{...}}`
/// placeholders, and whether it is a script to make executable.
type Files = &'static [(&'static str, &'static str, bool)];

/// What every project has: a README, the sample's cassette and records.
const COMMON_FILES: Files = &[
    ("README.md", include_str!("README.md.in"), false),
    ("tests/notes/cassette.json", include_str!("notes/cassette.json"), false),
    ("tests/notes/expected.json", include_str!("notes/expected.json"), false),
];

const RUST_FILES: Files = &[
    ("Cargo.toml", include_str!("rust/Cargo.toml.in"), false),
    ("src/lib.rs", include_str!("rust/lib.rs.in"), false),
    ("build.sh", include_str!("rust/build.sh"), true),
    (".gitignore", include_str!("rust/gitignore"), false),
    ("rustfmt.toml", include_str!("../../../rustfmt.toml"), false),
];

/// A Python project carries the contract it builds against.
const PYTHON_FILES: Files = &[
    ("app.py", include_str!("python/app.py.in"), false),
    ("build.sh", include_str!("python/build.sh"), true),
    (".gitignore", include_str!("python/gitignore"), false),
    ("wit/world.wit", include_str!("../../../wit/0.2.0/world.wit"), false),
    ("wit/types.wit", include_str!("../../../wit/0.2.0/types.wit"), false),
    ("wit/host.wit", include_str!("../../../wit/0.2.0/host.wit"), false),
];

impl Language {
    fn files(self) -> Files {
        match self {
            Language::Rust => RUST_FILES,
            Language::Python => PYTHON_FILES,
        }
    }

    /// The file holding the plugin's code.
    fn source(self) -> &'static str {
        match self {
            Language::Rust => "src/lib.rs",
            Language::Python => "app.py",
        }
    }

    /// What `build.sh` does besides building.
    fn build_note(self) -> &'static str {
        match self {
            Language::Rust => "adds the wasm32-wasip2 target if needed",
            Language::Python => "installs componentize-py into .venv if needed",
        }
    }
}

/// The Rust template's plugin code, as `inlet plugin new` writes it for `id`
/// (the guide quotes it).
pub fn rust_plugin_source(id: &str) -> String {
    fill(include_str!("rust/lib.rs.in"), id, Language::Rust, &SdkSource::Version(String::new()))
}

/// Write a new project for plugin `id` into `dir`, which must not exist or
/// be empty. Returns the files written.
pub fn create(id: &str, language: Language, dir: &Path, sdk: &SdkSource) -> Result<Vec<PathBuf>> {
    if !is_id(id) {
        bail!("plugin id {id:?} must be 1-64 characters of a-z, 0-9 and -");
    }
    if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
        bail!("{} already exists and is not empty; choose another folder with --dir", dir.display());
    }
    let mut written = Vec::new();
    for (name, template, executable) in language.files().iter().chain(COMMON_FILES) {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().expect("a file in the project"))?;
        std::fs::write(&path, fill(template, id, language, sdk))
            .with_context(|| format!("writing {}", path.display()))?;
        if *executable {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        }
        written.push(path);
    }
    Ok(written)
}

fn fill(template: &str, id: &str, language: Language, sdk: &SdkSource) -> String {
    let words: Vec<String> = id.split('-').filter(|w| !w.is_empty()).map(|w| w[..1].to_uppercase() + &w[1..]).collect();
    let mut type_name = words.concat();
    if type_name.starts_with(|c: char| c.is_ascii_digit()) {
        type_name.insert(0, 'P');
    }
    template
        .replace("{{id}}", id)
        .replace("{{name}}", &words.join(" "))
        .replace("{{type}}", &type_name)
        .replace("{{crate}}", &format!("inlet-plugin-{id}"))
        .replace("{{artifact}}", &format!("inlet_plugin_{}", id.replace('-', "_")))
        .replace("{{sdk}}", &sdk.dependency())
        .replace("{{source}}", language.source())
        .replace("{{build_note}}", language.build_note())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_id() {
        let source = rust_plugin_source("acme-notes");
        assert!(source.contains("struct AcmeNotes;"));
        assert!(source.contains(r#"Manifest::new("acme-notes", "Acme Notes""#));
        assert!(!source.contains("{{"), "a placeholder is left: {source}");
    }

    /// The guide quotes the template's plugin, which the suite builds and tests.
    #[test]
    fn the_guide_shows_the_template_as_it_is() {
        let guide = include_str!("../../../docs/writing-a-plugin.md");
        let quoted = guide.split("```rust\n").nth(1).and_then(|rest| rest.split("```").next()).unwrap();
        assert_eq!(quoted, rust_plugin_source("acme-notes"), "docs/writing-a-plugin.md quotes another sample");
    }

    #[test]
    fn an_existing_project_is_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("keep"), "").unwrap();
        let refused = create("notes", Language::Rust, dir.path(), &SdkSource::Version("0.1.0".into())).unwrap_err();
        assert!(refused.to_string().contains("not empty"), "{refused}");
        assert!(create("Bad_Id", Language::Rust, &dir.path().join("x"), &SdkSource::Version("0.1.0".into())).is_err());
    }
}
