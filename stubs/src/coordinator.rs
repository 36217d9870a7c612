//! The `tai.Coordinator` stub: action requests checked against the policies of the shared
//! [`Store`].

use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::fault::{Backend, unary};
use crate::proto::tai::coordinator_server::Coordinator;
use crate::proto::tai::{ActionRequest, GetActionStatusRequest, Receipt};
use crate::status::bad_request;
use crate::store::Store;

const BACKEND: Backend = Backend {
    label: "coordinator",
    service: "tai.Coordinator",
};

/// The `tai.Coordinator` implementation.
#[derive(Debug, Clone)]
pub(crate) struct CoordinatorStub {
    store: Arc<Store>,
}

impl CoordinatorStub {
    /// A Coordinator answering from `store`.
    pub(crate) fn new(store: Arc<Store>) -> Self {
        Self { store }
    }
}

#[tonic::async_trait]
impl Coordinator for CoordinatorStub {
    /// Accepts an action when its agent is named and its policy exists and is not revoked.
    async fn request_action(&self, r: Request<ActionRequest>) -> Result<Response<Receipt>, Status> {
        let store = &self.store;
        unary(store, BACKEND, "RequestAction", r, |_, req| {
            if req.agent_id.is_empty() {
                return Err(bad_request("agent_id", "must not be empty"));
            }
            let mut registry = store.registry();
            registry.check_actionable(&req.policy_id)?;
            Ok(registry.receipt("accepted", &req.policy_id))
        })
        .await
    }

    /// Every action is reported as still pending.
    async fn get_action_status(
        &self,
        r: Request<GetActionStatusRequest>,
    ) -> Result<Response<Receipt>, Status> {
        unary(&self.store, BACKEND, "GetActionStatus", r, |_, req| {
            Ok(Receipt {
                id: req.name,
                status: "pending".to_owned(),
                policy_id: String::new(),
            })
        })
        .await
    }
}
