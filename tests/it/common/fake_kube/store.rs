//! The fake's etcd: objects as JSON keyed by (kind, namespace, name), one
//! global resourceVersion counter that every write bumps, and typed access
//! for tests. Keys sort like etcd keys, so lists come back in name order.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Resource;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The kinds the fake serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Pod,
    ReplicaSet,
    Deployment,
    /// core/v1 Event.
    Event,
    /// events.k8s.io/v1 Event: a separate view with its own validation.
    EventV1,
    /// Argo CD's argoproj.io/v1alpha1 Application (a CRD).
    Application,
    /// Flux's kustomize.toolkit.fluxcd.io/v1 Kustomization (a CRD).
    Kustomization,
    /// Flux's helm.toolkit.fluxcd.io/v2 HelmRelease (a CRD).
    HelmRelease,
}

impl Kind {
    const ALL: [Kind; 8] = [
        Kind::Pod,
        Kind::ReplicaSet,
        Kind::Deployment,
        Kind::Event,
        Kind::EventV1,
        Kind::Application,
        Kind::Kustomization,
        Kind::HelmRelease,
    ];

    /// The custom resources the fake serves (GET and JSON patch).
    pub fn custom(self) -> bool {
        matches!(
            self,
            Kind::Application | Kind::Kustomization | Kind::HelmRelease
        )
    }

    pub fn of(api_version: &str, kind: &str) -> Option<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.api_version() == api_version && k.kind() == kind)
    }

    pub fn from_plural(group: &str, version: &str, plural: &str) -> Option<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.group() == group && k.version() == version && k.plural() == plural)
    }

    pub fn version(self) -> &'static str {
        self.api_version().rsplit('/').next().unwrap_or_default()
    }

    pub fn api_version(self) -> &'static str {
        match self {
            Kind::Pod | Kind::Event => "v1",
            Kind::ReplicaSet | Kind::Deployment => "apps/v1",
            Kind::EventV1 => "events.k8s.io/v1",
            Kind::Application => "argoproj.io/v1alpha1",
            Kind::Kustomization => "kustomize.toolkit.fluxcd.io/v1",
            Kind::HelmRelease => "helm.toolkit.fluxcd.io/v2",
        }
    }

    pub fn group(self) -> &'static str {
        self.api_version().rsplit_once('/').map_or("", |(g, _)| g)
    }

    pub fn kind(self) -> &'static str {
        match self {
            Kind::Pod => "Pod",
            Kind::ReplicaSet => "ReplicaSet",
            Kind::Deployment => "Deployment",
            Kind::Event | Kind::EventV1 => "Event",
            Kind::Application => "Application",
            Kind::Kustomization => "Kustomization",
            Kind::HelmRelease => "HelmRelease",
        }
    }

    pub fn plural(self) -> &'static str {
        match self {
            Kind::Pod => "pods",
            Kind::ReplicaSet => "replicasets",
            Kind::Deployment => "deployments",
            Kind::Event | Kind::EventV1 => "events",
            Kind::Application => "applications",
            Kind::Kustomization => "kustomizations",
            Kind::HelmRelease => "helmreleases",
        }
    }

    /// `deployments.apps`, `pods`: how the API server names a resource in
    /// its messages.
    pub fn resource(self) -> String {
        match self.group() {
            "" => self.plural().to_string(),
            g => format!("{}.{g}", self.plural()),
        }
    }

    fn of_type<K: Resource<DynamicType = ()>>() -> Kind {
        let (v, k) = (K::api_version(&()), K::kind(&()));
        Kind::of(&v, &k).unwrap_or_else(|| panic!("the fake API server does not serve {v} {k}"))
    }
}

type Key = (Kind, String, String);

#[derive(Default)]
pub struct Store {
    objects: BTreeMap<Key, Value>,
    /// Last resourceVersion handed out; like etcd's revision it is global,
    /// so clients cannot rely on per-object numbering.
    revision: u64,
}

impl Store {
    pub fn resource_version(&self) -> String {
        self.revision.to_string()
    }

    pub fn next_resource_version(&mut self) -> String {
        self.revision += 1;
        self.revision.to_string()
    }

    pub fn get_json(&self, kind: Kind, namespace: &str, name: &str) -> Option<&Value> {
        self.objects
            .get(&(kind, namespace.to_string(), name.to_string()))
    }

    /// Store `object` as is, except for a fresh resourceVersion.
    pub fn write_json(&mut self, kind: Kind, mut object: Value) -> Value {
        let namespace = text(&object, "/metadata/namespace").to_string();
        let name = text(&object, "/metadata/name").to_string();
        assert!(
            !namespace.is_empty() && !name.is_empty(),
            "{} needs metadata.namespace and metadata.name: {object}",
            kind.kind()
        );
        object["metadata"]["resourceVersion"] = json!(self.next_resource_version());
        self.objects.insert((kind, namespace, name), object.clone());
        object
    }

    /// Insert or replace the way an admin would seed a cluster: fill what
    /// the server owns (uid, creationTimestamp, generation) when missing.
    pub fn insert_json(&mut self, kind: Kind, mut object: Value) -> Value {
        object["apiVersion"] = json!(kind.api_version());
        object["kind"] = json!(kind.kind());
        let meta = &mut object["metadata"];
        if text(meta, "/uid").is_empty() {
            meta["uid"] = json!(new_uid());
        }
        if text(meta, "/creationTimestamp").is_empty() {
            meta["creationTimestamp"] = now();
        }
        if !matches!(kind, Kind::Event | Kind::EventV1) && meta.get("generation").is_none() {
            meta["generation"] = json!(1);
        }
        self.write_json(kind, object)
    }

    /// Objects of `kind` in `namespace` for which `keep` holds, in name order.
    pub fn list_json(
        &self,
        kind: Kind,
        namespace: &str,
        keep: impl Fn(&Value) -> bool,
    ) -> Vec<Value> {
        self.objects
            .iter()
            .filter(|((k, ns, _), v)| *k == kind && ns == namespace && keep(v))
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Typed read-back.
    pub fn get<K: Resource<DynamicType = ()> + DeserializeOwned>(
        &self,
        namespace: &str,
        name: &str,
    ) -> Option<K> {
        let value = self.get_json(Kind::of_type::<K>(), namespace, name)?;
        Some(typed(value.clone()))
    }

    /// Typed insert or replace; returns what was stored.
    pub fn put<K: Resource<DynamicType = ()> + Serialize + DeserializeOwned>(
        &mut self,
        object: K,
    ) -> K {
        let value = serde_json::to_value(&object).expect("k8s-openapi objects serialize");
        typed(self.insert_json(Kind::of_type::<K>(), value))
    }

    /// Change a stored object the way another writer (a controller, another
    /// replica) would: the change lands with a new resourceVersion.
    pub fn modify<K: Resource<DynamicType = ()> + Serialize + DeserializeOwned>(
        &mut self,
        namespace: &str,
        name: &str,
        change: impl FnOnce(&mut K),
    ) -> K {
        let kind = Kind::of_type::<K>();
        let mut object: K = self
            .get(namespace, name)
            .unwrap_or_else(|| panic!("no {} {namespace}/{name} to modify", kind.kind()));
        change(&mut object);
        let value = serde_json::to_value(&object).expect("k8s-openapi objects serialize");
        typed(self.write_json(kind, value))
    }

    /// Every stored object of a kind, oldest write first.
    pub fn all<K: Resource<DynamicType = ()> + DeserializeOwned>(&self) -> Vec<K> {
        let kind = Kind::of_type::<K>();
        let mut values: Vec<&Value> = self
            .objects
            .iter()
            .filter(|((k, _, _), _)| *k == kind)
            .map(|(_, v)| v)
            .collect();
        values.sort_by_key(|v| {
            text(v, "/metadata/resourceVersion")
                .parse::<u64>()
                .unwrap_or(0)
        });
        values.into_iter().map(|v| typed(v.clone())).collect()
    }
}

/// The string at a JSON pointer, or "" when absent or not a string.
pub fn text<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// A server-side timestamp in the API's format (whole seconds, UTC).
pub fn now() -> Value {
    serde_json::to_value(Time(k8s_openapi::jiff::Timestamp::now())).expect("Time serializes")
}

/// A random version-4 UUID, the shape real uids have.
pub fn new_uid() -> String {
    let bits: u128 = rand::random();
    let bits = (bits & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
    let hex = format!("{bits:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

fn typed<K: DeserializeOwned>(value: Value) -> K {
    serde_json::from_value(value).expect("stored objects are valid k8s-openapi objects")
}
