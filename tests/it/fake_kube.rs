//! The fake Kubernetes API server's own tests: driven through the real
//! `kube::Client`, they show it answers like the real server where backstop
//! depends on it (shapes, selectors, conflicts, validation) and that it
//! refuses and reports what it does not implement instead of guessing.

mod reads;
mod writes;

use crate::common::fake_kube::selector::Selector;
use crate::common::fake_kube::{FakeKube, Fixture, checkout_cluster};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::authorization::v1::SelfSubjectAccessReview;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::core::Status;
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::time::Duration;
async fn cluster() -> (FakeKube, Fixture, kube::Client) {
    let fake = FakeKube::start().await;
    let fixture = checkout_cluster(&fake);
    let client = fake.client(&fixture.namespace);
    (fake, fixture, client)
}

/// The `Status` of a request that must have failed with an API error.
pub(crate) fn status<T: Debug>(result: Result<T, kube::Error>) -> Box<Status> {
    match result {
        Err(kube::Error::Api(s)) => s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// (code, reason) of a request that must have failed with an API error.
pub(crate) fn refused<T: Debug>(result: Result<T, kube::Error>) -> (u16, String) {
    let s = status(result);
    (s.code, s.reason)
}

pub(crate) fn json_patch(ops: Value) -> Patch<()> {
    Patch::Json(serde_json::from_value(ops).expect("a JSON patch"))
}

/// Apply a JSON patch to Deployment `checkout`.
pub(crate) async fn patch(api: &Api<Deployment>, ops: Value) -> kube::Result<Deployment> {
    api.patch("checkout", &PatchParams::default(), &json_patch(ops))
        .await
}

pub(crate) async fn resource_version(api: &Api<Deployment>) -> String {
    api.get("checkout")
        .await
        .unwrap()
        .resource_version()
        .unwrap()
}

/// The message of the panic `f` raises; fails the test if it does not.
pub(crate) fn panic_message(f: impl FnOnce()) -> String {
    let payload =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).expect_err("it should panic");
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}
