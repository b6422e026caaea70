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

# Fuzz the frame and message decoder for SECONDS (default 60) with cargo-fuzz (installs it
# if missing; needs the nightly toolchain). Prints the executions it ran without a crash.
fuzz SECONDS="60":
    command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
    cd fuzz && cargo +nightly fuzz run decode -- -max_total_time={{SECONDS}}
