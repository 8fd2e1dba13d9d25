//! Nothing here: the models are in `tests/models.rs`, run by `.ci/run` as
//! `RUSTFLAGS="--cfg fasthog_loom" cargo test -p fasthog-loom --release`.
