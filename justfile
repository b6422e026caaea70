# velos developer tasks. `just --list` shows them.

# Build the release binaries (target/release/velos and velosd).
build:
    cargo build --release

# Everything CI checks: formatting, lints, tests, docs.
test:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
    cargo test --workspace
    RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps

# Build, then start the example node app under velos and show it.
run-example: build
    ./target/release/velos start examples/node-app/app.js
    ./target/release/velos list

# Benchmarks: `just bench`, or `just bench --compare pm2`.
bench *ARGS:
    cargo run --release -p velos-bench -- {{ARGS}}

# The long tests (1 GB of log lines, awkward output at volume, 200 SDK clients), in release;
# each prints the figures it reached.
stress:
    cargo test --release -p velos-tests --test stress -- --ignored --nocapture --test-threads=1
