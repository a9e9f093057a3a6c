//! The rollout judge of `svcgen deploy`: whether an ECS deployment reached a steady state,
//! decided from AWS's describe responses alone, so that it is tested on AWS's response shapes
//! without an account. The AWS calls that feed it live in the `svcgen` crate
//! (`codegen/src/deploy/`).

pub mod wait;
