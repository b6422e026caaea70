# velos developer tasks. `just --list` shows them.

# Build the release binaries (target/bin/velos and velosd: static musl ones where the musl
# target is installed, see scripts/build).
build:
    scripts/build

# Everything CI checks: formatting, lints, tests, docs.
test:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
    # The e2e harness builds these too, inside the first tests; built here, that is a no-op.
    cargo build -p velos -p velosd
    cargo test --workspace
    RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps

# Build, then start the example node app under velos and show it.
run-example: build
    target/bin/velos start examples/node-app/app.js
    target/bin/velos list

# Benchmarks against the targets (--compare pm2, --quick, --only GROUPS).
bench *ARGS:
    cargo run --release -p velos-bench -- {{ARGS}}

# Long reliability runs (1 GB of log lines, awkward output, 200 SDK clients), printing figures.
stress:
    cargo test --release -p velos-tests --test stress -- --ignored --nocapture --test-threads=1

# Fuzz the frame and message decoder for SECONDS with cargo-fuzz (needs nightly).
fuzz SECONDS="60":
    command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
    cd fuzz && cargo +nightly fuzz run decode -- -max_total_time={{SECONDS}}
