//! `cargo xtask modules`: which of the host's top-level modules each one
//! imports (any `crate::<module>` path in its files), and the import cycles
//! among them: groups of modules that reach each other through imports.
//! The crate root, which declares them all, is left out. Exits non-zero
//! while there is a cycle.

use anyhow::{Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Imports = BTreeMap<String, BTreeSet<String>>;

pub fn report(src: &Path) -> Result<bool> {
    let imports = imports(src)?;
    for (module, used) in &imports {
        println!("{module:<14} -> {}", used.iter().cloned().collect::<Vec<_>>().join(" "));
    }
    let cycles = cycles(&imports);
    for cycle in &cycles {
        println!("cycle: {}", cycle.join(" "));
    }
    if cycles.is_empty() {
        println!("no import cycles");
    }
    Ok(cycles.is_empty())
}

/// Fail, naming them, if the host's top-level modules import each other.
pub fn check(src: &Path) -> Result<()> {
    let cycles = cycles(&imports(src)?);
    if let Some(cycle) = cycles.first() {
        anyhow::bail!("host modules import each other: {} (see `cargo xtask modules`)", cycle.join(" -> "));
    }
    Ok(())
}

/// Top-level module → the other top-level modules its files name.
fn imports(src: &Path) -> Result<Imports> {
    let mut imports = Imports::new();
    let mut files = vec![src.to_path_buf()];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).with_context(|| format!("reading {}", path.display()))? {
                files.push(entry?.path());
            }
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let relative = path.strip_prefix(src).expect("walked from src");
        let first = relative.components().next().expect("a file under src").as_os_str().to_string_lossy();
        let module = first.trim_end_matches(".rs").to_string();
        if module == "lib" || module == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let used = imports.entry(module.clone()).or_default();
        for (at, _) in text.match_indices("crate::") {
            let name: String = text[at + 7..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if !name.is_empty() && name != module {
                used.insert(name);
            }
        }
    }
    // Other names under `crate::` are the root's own items (`crate::Host`).
    let modules: BTreeSet<String> = imports.keys().cloned().collect();
    for used in imports.values_mut() {
        used.retain(|name| modules.contains(name));
    }
    Ok(imports)
}

/// The strongly connected components with more than one module (Tarjan).
fn cycles(imports: &Imports) -> Vec<Vec<String>> {
    struct Walk<'a> {
        imports: &'a Imports,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        cycles: Vec<Vec<String>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, module: &'a str) {
            let n = self.index.len();
            self.index.insert(module, n);
            self.low.insert(module, n);
            self.stack.push(module);
            for next in self.imports.get(module).into_iter().flatten() {
                let next = next.as_str();
                if !self.index.contains_key(next) {
                    self.visit(next);
                    let low = self.low[module].min(self.low[next]);
                    self.low.insert(module, low);
                } else if self.stack.contains(&next) {
                    let low = self.low[module].min(self.index[next]);
                    self.low.insert(module, low);
                }
            }
            if self.low[module] == self.index[module] {
                let at = self.stack.iter().rposition(|m| *m == module).expect("on the stack");
                let mut component: Vec<String> = self.stack.drain(at..).map(str::to_string).collect();
                if component.len() > 1 {
                    component.sort();
                    self.cycles.push(component);
                }
            }
        }
    }
    let mut walk =
        Walk { imports, index: BTreeMap::new(), low: BTreeMap::new(), stack: Vec::new(), cycles: Vec::new() };
    for module in imports.keys() {
        if !walk.index.contains_key(module.as_str()) {
            walk.visit(module);
        }
    }
    walk.cycles
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &[&str])]) -> Imports {
        edges.iter().map(|(m, used)| (m.to_string(), used.iter().map(|u| u.to_string()).collect())).collect()
    }

    #[test]
    fn finds_each_cycle_and_nothing_in_a_chain() {
        let chain = graph(&[("api", &["store"]), ("store", &["clock"]), ("clock", &[])]);
        assert!(cycles(&chain).is_empty());
        let tangled = graph(&[
            ("auth", &["capabilities"]),
            ("capabilities", &["runtime"]),
            ("runtime", &["auth"]),
            ("api", &["store"]),
            ("store", &["api"]),
            ("clock", &[]),
        ]);
        assert_eq!(cycles(&tangled), [vec!["api", "store"], vec!["auth", "capabilities", "runtime"]]);
    }
}
