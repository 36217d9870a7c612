//! The `tai.Governor` stub: policy RPCs over the shared [`Store`], plus the echo and
//! document RPCs the gateway's transcoding tests use.

use std::fmt::Write as _;
use std::sync::Arc;

use tonic::metadata::{KeyAndValueRef, MetadataMap};
use tonic::{Request, Response, Status};

use crate::fault::{Backend, unary};
use crate::proto::google::api::HttpBody;
use crate::proto::tai::governor_server::Governor;
use crate::proto::tai::{
    Document, EchoMessage, EnforcePolicyRequest, ExportPoliciesRequest, GetDocumentRequest,
    GetPolicyRequest, ListPoliciesRequest, ListPoliciesResponse, Policy, PolicyEvent,
    PolicyEventKind, PurgeCacheRequest, Receipt, RevokePolicyRequest, SearchPoliciesRequest,
    SearchPoliciesResponse, UpdatePolicyRequest, WatchPoliciesRequest,
};
use crate::store::Store;
use crate::watch::{self, Stream};

const BACKEND: Backend = Backend {
    label: "governor",
    service: "tai.Governor",
};

/// The `tai.Governor` implementation.
#[derive(Debug, Clone)]
pub(crate) struct GovernorStub {
    store: Arc<Store>,
}

impl GovernorStub {
    /// A Governor answering from `store`.
    pub(crate) fn new(store: Arc<Store>) -> Self {
        Self { store }
    }
}

#[tonic::async_trait]
impl Governor for GovernorStub {
    async fn propose_policy(&self, r: Request<Policy>) -> Result<Response<Receipt>, Status> {
        let store = &self.store;
        unary(store, BACKEND, "ProposePolicy", r, |_, policy| {
            let mut registry = store.registry();
            let receipt = registry.propose(policy)?;
            let policy = registry.get(&receipt.policy_id)?;
            publish(store, PolicyEventKind::Proposed, policy);
            Ok(receipt)
        })
        .await
    }

    async fn get_policy(&self, r: Request<GetPolicyRequest>) -> Result<Response<Policy>, Status> {
        let store = &self.store;
        unary(store, BACKEND, "GetPolicy", r, |_, req| {
            store.registry().get(&req.id)
        })
        .await
    }

    async fn list_policies(
        &self,
        r: Request<ListPoliciesRequest>,
    ) -> Result<Response<ListPoliciesResponse>, Status> {
        let store = &self.store;
        unary(store, BACKEND, "ListPolicies", r, |_, req| {
            let policies = store.registry().list(&req);
            Ok(ListPoliciesResponse { policies })
        })
        .await
    }

    async fn revoke_policy(
        &self,
        r: Request<RevokePolicyRequest>,
    ) -> Result<Response<Receipt>, Status> {
        let store = &self.store;
        unary(store, BACKEND, "RevokePolicy", r, |_, req| {
            let mut registry = store.registry();
            let receipt = registry.revoke(&req.id)?;
            let policy = registry.get(&req.id)?;
            publish(store, PolicyEventKind::Revoked, policy);
            Ok(receipt)
        })
        .await
    }

    async fn enforce_policy(
        &self,
        r: Request<EnforcePolicyRequest>,
    ) -> Result<Response<Receipt>, Status> {
        let store = &self.store;
        unary(store, BACKEND, "EnforcePolicy", r, |_, req| {
            store.registry().enforce(&req.id, req.dry_run)
        })
        .await
    }

    async fn update_policy(
        &self,
        r: Request<UpdatePolicyRequest>,
    ) -> Result<Response<Policy>, Status> {
        let store = &self.store;
        unary(store, BACKEND, "UpdatePolicy", r, |_, req| {
            let policy = req
                .policy
                .ok_or_else(|| Status::invalid_argument("policy must be set"))?;
            let paths = req.update_mask.map(|m| m.paths).unwrap_or_default();
            store.registry().update(policy, &paths)
        })
        .await
    }

    async fn get_policy_rules(
        &self,
        r: Request<GetPolicyRequest>,
    ) -> Result<Response<Policy>, Status> {
        let store = &self.store;
        unary(store, BACKEND, "GetPolicyRules", r, |_, req| {
            store.registry().get(&req.id)
        })
        .await
    }

    async fn export_policy(
        &self,
        r: Request<GetPolicyRequest>,
    ) -> Result<Response<HttpBody>, Status> {
        let store = &self.store;
        unary(store, BACKEND, "ExportPolicy", r, |_, req| {
            let policy = store.registry().get(&req.id)?;
            Ok(HttpBody {
                content_type: "text/plain; charset=utf-8".to_owned(),
                data: render(&policy).into_bytes(),
                extensions: Vec::new(),
            })
        })
        .await
    }

    async fn search_policies(
        &self,
        r: Request<SearchPoliciesRequest>,
    ) -> Result<Response<SearchPoliciesResponse>, Status> {
        let store = &self.store;
        unary(store, BACKEND, "SearchPolicies", r, |_, req| {
            let policies = store.registry().search(&req);
            Ok(SearchPoliciesResponse {
                policies,
                query: Some(req),
            })
        })
        .await
    }

    async fn get_document(
        &self,
        r: Request<GetDocumentRequest>,
    ) -> Result<Response<Document>, Status> {
        unary(&self.store, BACKEND, "GetDocument", r, |_, req| {
            let segments = if req.path.is_empty() {
                Vec::new()
            } else {
                req.path.split('/').map(str::to_owned).collect()
            };
            Ok(Document {
                path: req.path,
                segments,
            })
        })
        .await
    }

    async fn purge_cache(
        &self,
        r: Request<PurgeCacheRequest>,
    ) -> Result<Response<Receipt>, Status> {
        let store = &self.store;
        unary(store, BACKEND, "PurgeCache", r, |_, _| {
            Ok(store.registry().receipt("purged", ""))
        })
        .await
    }

    type WatchPoliciesStream = Stream<PolicyEvent>;

    async fn watch_policies(
        &self,
        r: Request<WatchPoliciesRequest>,
    ) -> Result<Response<Self::WatchPoliciesStream>, Status> {
        watch::watch(self.store.clone(), BACKEND, r).await
    }

    type ExportPoliciesStream = Stream<HttpBody>;

    async fn export_policies(
        &self,
        r: Request<ExportPoliciesRequest>,
    ) -> Result<Response<Self::ExportPoliciesStream>, Status> {
        watch::export(self.store.clone(), BACKEND, r).await
    }

    async fn propose_policies(
        &self,
        r: Request<tonic::Streaming<crate::proto::tai::Policy>>,
    ) -> Result<Response<crate::proto::tai::ProposePoliciesResponse>, Status> {
        crate::inbound::propose_all(self.store.clone(), BACKEND, r).await
    }

    async fn upload_policy_bundle(
        &self,
        r: Request<tonic::Streaming<HttpBody>>,
    ) -> Result<Response<crate::proto::tai::UploadSummary>, Status> {
        crate::inbound::upload(self.store.clone(), BACKEND, r).await
    }

    type EchoStreamStream = Stream<EchoMessage>;

    async fn echo_stream(
        &self,
        r: Request<tonic::Streaming<EchoMessage>>,
    ) -> Result<Response<Self::EchoStreamStream>, Status> {
        crate::inbound::echo_stream(self.store.clone(), BACKEND, r).await
    }

    async fn echo(&self, r: Request<EchoMessage>) -> Result<Response<EchoMessage>, Status> {
        unary(&self.store, BACKEND, "Echo", r, |metadata, mut message| {
            message.received_metadata = ascii_metadata(metadata);
            Ok(message)
        })
        .await
    }
}

/// Tells open `WatchPolicies` streams about a change (sent while the registry is locked, so
/// events arrive in the order of the changes).
pub(crate) fn publish(store: &Store, kind: PolicyEventKind, policy: crate::proto::tai::Policy) {
    store.events().publish(PolicyEvent {
        kind: kind.into(),
        policy: Some(policy),
    });
}

/// The policy as `key: value` lines, rules last and sorted so the text is stable.
pub(crate) fn render(policy: &Policy) -> String {
    let mut text = format!(
        "id: {}\nname: {}\ntype: {}\nstate: {}\nversion: {}\n",
        policy.id,
        policy.policy_name,
        policy.policy_type,
        policy.state().as_str_name(),
        policy.version,
    );
    let mut rules: Vec<_> = policy.rules.iter().collect();
    rules.sort();
    for (key, value) in rules {
        // Writing to a String cannot fail.
        let _ = writeln!(text, "rule {key}: {value}");
    }
    text
}

/// Every ASCII request metadata entry; binary (`-bin`) keys are left out and repeated keys
/// are joined with `", "` as HTTP would.
pub(crate) fn ascii_metadata(metadata: &MetadataMap) -> std::collections::HashMap<String, String> {
    let mut seen = std::collections::HashMap::<String, String>::new();
    for entry in metadata.iter() {
        let KeyAndValueRef::Ascii(key, value) = entry else {
            continue;
        };
        let Ok(value) = value.to_str() else {
            continue;
        };
        seen.entry(key.as_str().to_owned())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(value);
            })
            .or_insert_with(|| value.to_owned());
    }
    seen
}
