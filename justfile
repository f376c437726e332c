# Everyday recipes; each calls the same xtask as the README's commands.

# Build host and plugins, start `inlet serve` on SQLite (pass --demo for the offline demo)
run *ARGS:
    cargo xtask run {{ARGS}}

# fmt, clippy (host and plugins) and the whole test suite
test:
    cargo xtask test

# Build the plugin components into plugins/*.wasm
build-plugins:
    cargo xtask build-plugins

# The reliability harness in full (RELIABILITY.md): crash cycles, failover, fuzzing
chaos *ARGS:
    cargo xtask chaos {{ARGS}}
