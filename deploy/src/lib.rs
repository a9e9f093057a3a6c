//! `svcgen deploy`'s logic that does not talk to AWS, kept apart so that it is tested on AWS's
//! response shapes without an account. Issue 6 wires it to the AWS SDK.

pub mod wait;
