//! The policy registry behind the Governor and Coordinator: policies in creation order and
//! the counters that name new policies (`pol-N`) and receipts (`rec-N`).
//!
//! Everything here is synchronous and runs under the store's lock; the RPC handlers only
//! translate requests into these calls.

use std::collections::HashMap;
use std::time::SystemTime;

use tonic::Status;

use crate::proto::tai::{ListPoliciesRequest, Policy, PolicyState, Receipt, SearchPoliciesRequest};
use crate::status::{bad_request, policy_not_found};

/// Policies in creation order plus the id counters.
#[derive(Debug, Default)]
pub(crate) struct PolicyRegistry {
    /// A `Vec` keeps creation order for listing.
    policies: Vec<Policy>,
    /// Position of each policy in `policies` by id. Load benchmarks propose hundreds of
    /// thousands of policies; a linear lookup would make each call slower than the last.
    /// Policies are never removed (revoking only changes state), so positions stay valid.
    index: HashMap<String, usize>,
    /// The last `N` handed out as `pol-N`.
    last_policy: u64,
    /// The last `N` handed out as `rec-N`, shared by every service of the store.
    last_receipt: u64,
}

impl PolicyRegistry {
    /// Issues the next receipt with `status` about `policy_id` (may be empty).
    pub(crate) fn receipt(&mut self, status: &str, policy_id: &str) -> Receipt {
        self.last_receipt += 1;
        Receipt {
            id: format!("rec-{}", self.last_receipt),
            status: status.to_owned(),
            policy_id: policy_id.to_owned(),
        }
    }

    /// Stores a new policy in state `PROPOSED` and returns a `"success"` receipt.
    ///
    /// An empty id is replaced by the next free `pol-N`; a given id that exists already is
    /// `ALREADY_EXISTS`. Version 0 becomes 1 and a missing `created_at` becomes now.
    pub(crate) fn propose(&mut self, mut policy: Policy) -> Result<Receipt, Status> {
        if policy.policy_name.is_empty() {
            return Err(bad_request("policy_name", "must not be empty"));
        }
        if policy.id.is_empty() {
            policy.id = self.next_policy_id();
        } else if self.find(&policy.id).is_some() {
            return Err(Status::already_exists(format!(
                "policy {} already exists",
                policy.id
            )));
        }
        policy.set_state(PolicyState::Proposed);
        if policy.version == 0 {
            policy.version = 1;
        }
        if policy.created_at.is_none() {
            policy.created_at = Some(SystemTime::now().into());
        }
        let id = policy.id.clone();
        self.index.insert(id.clone(), self.policies.len());
        self.policies.push(policy);
        Ok(self.receipt("success", &id))
    }

    /// A copy of policy `id`, or `NOT_FOUND`.
    pub(crate) fn get(&self, id: &str) -> Result<Policy, Status> {
        self.find(id).cloned().ok_or_else(|| policy_not_found(id))
    }

    /// Policies of `policy_type` (all when empty), at most `page_size` (all when not positive).
    pub(crate) fn list(&self, request: &ListPoliciesRequest) -> Vec<Policy> {
        let limit = usize::try_from(request.page_size)
            .ok()
            .filter(|&n| n > 0)
            .unwrap_or(usize::MAX);
        self.policies
            .iter()
            .filter(|p| request.policy_type.is_empty() || p.policy_type == request.policy_type)
            .take(limit)
            .cloned()
            .collect()
    }

    /// Marks policy `id` revoked and returns a `"revoked"` receipt.
    pub(crate) fn revoke(&mut self, id: &str) -> Result<Receipt, Status> {
        self.find_mut(id)?.set_state(PolicyState::Revoked);
        Ok(self.receipt("revoked", id))
    }

    /// Activates policy `id` (unless `dry_run`); a revoked policy is `FAILED_PRECONDITION`.
    pub(crate) fn enforce(&mut self, id: &str, dry_run: bool) -> Result<Receipt, Status> {
        let policy = self.find_mut(id)?;
        if policy.state() == PolicyState::Revoked {
            return Err(revoked(id));
        }
        if dry_run {
            return Ok(self.receipt("dry_run", id));
        }
        policy.set_state(PolicyState::Active);
        Ok(self.receipt("enforced", id))
    }

    /// Copies the fields named by `paths` (all three when empty) from `update` onto the
    /// stored policy with the same id, bumps its version and returns it.
    pub(crate) fn update(&mut self, update: Policy, paths: &[String]) -> Result<Policy, Status> {
        const ALL: [&str; 3] = ["policy_type", "policy_name", "rules"];
        let paths: Vec<&str> = if paths.is_empty() {
            ALL.to_vec()
        } else {
            paths.iter().map(String::as_str).collect()
        };
        if let Some(unknown) = paths.iter().find(|p| !ALL.contains(p)) {
            return Err(bad_request(
                "update_mask",
                &format!("has unknown path {unknown:?}"),
            ));
        }
        let policy = self.find_mut(&update.id)?;
        for path in paths {
            match path {
                "policy_type" => policy.policy_type.clone_from(&update.policy_type),
                "policy_name" => policy.policy_name.clone_from(&update.policy_name),
                _ => policy.rules.clone_from(&update.rules),
            }
        }
        policy.version += 1;
        Ok(policy.clone())
    }

    /// The policies a search request selects, in creation order.
    ///
    /// Filters that are set all apply: `ids`, `filter.name_prefix`, `filter.policy_types`,
    /// `states`; then at most `limit` (when positive). Other fields are only echoed back.
    pub(crate) fn search(&self, request: &SearchPoliciesRequest) -> Vec<Policy> {
        let filter = request.filter.clone().unwrap_or_default();
        let limit = usize::try_from(request.limit)
            .ok()
            .filter(|&n| n > 0)
            .unwrap_or(usize::MAX);
        self.policies
            .iter()
            .filter(|p| request.ids.is_empty() || request.ids.contains(&p.id))
            .filter(|p| p.policy_name.starts_with(&filter.name_prefix))
            .filter(|p| {
                filter.policy_types.is_empty() || filter.policy_types.contains(&p.policy_type)
            })
            .filter(|p| request.states.is_empty() || request.states.contains(&p.state))
            .take(limit)
            .cloned()
            .collect()
    }

    /// Checks that an action may run under policy `id`: it exists and is not revoked.
    pub(crate) fn check_actionable(&self, id: &str) -> Result<(), Status> {
        match self.find(id) {
            None => Err(policy_not_found(id)),
            Some(p) if p.state() == PolicyState::Revoked => Err(revoked(id)),
            Some(_) => Ok(()),
        }
    }

    fn find(&self, id: &str) -> Option<&Policy> {
        self.index.get(id).and_then(|&i| self.policies.get(i))
    }

    fn find_mut(&mut self, id: &str) -> Result<&mut Policy, Status> {
        match self.index.get(id) {
            Some(&i) => self.policies.get_mut(i).ok_or_else(|| policy_not_found(id)),
            None => Err(policy_not_found(id)),
        }
    }

    /// The next `pol-N` not already taken by a caller-chosen id.
    fn next_policy_id(&mut self) -> String {
        loop {
            self.last_policy += 1;
            let id = format!("pol-{}", self.last_policy);
            if self.find(&id).is_none() {
                return id;
            }
        }
    }
}

fn revoked(id: &str) -> Status {
    Status::failed_precondition(format!("policy {id} is revoked"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    fn named(name: &str) -> Policy {
        Policy {
            policy_name: name.to_owned(),
            ..Default::default()
        }
    }

    #[test]
    fn assigned_ids_skip_ids_chosen_by_callers() {
        let mut registry = PolicyRegistry::default();
        let mut chosen = named("a");
        chosen.id = "pol-1".to_owned();
        registry.propose(chosen).expect("chosen id");
        let receipt = registry.propose(named("b")).expect("assigned id");
        assert_eq!(receipt.policy_id, "pol-2");
        assert_eq!(receipt.id, "rec-2");
    }

    #[test]
    fn update_with_empty_mask_replaces_all_three_fields_and_bumps_version() {
        let mut registry = PolicyRegistry::default();
        registry.propose(named("old")).expect("propose");
        let mut update = named("new");
        update.id = "pol-1".to_owned();
        update.policy_type = "t".to_owned();
        let updated = registry.update(update, &[]).expect("update");
        assert_eq!(updated.policy_name, "new");
        assert_eq!(updated.policy_type, "t");
        assert_eq!(updated.version, 2);
    }

    #[test]
    fn update_rejects_unknown_mask_paths() {
        let mut registry = PolicyRegistry::default();
        registry.propose(named("old")).expect("propose");
        let mut update = named("new");
        update.id = "pol-1".to_owned();
        let err = registry
            .update(update, &["version".to_owned()])
            .expect_err("unknown path");
        assert_eq!(err.code(), Code::InvalidArgument);
    }

    #[test]
    fn search_combines_prefix_state_and_limit() {
        let mut registry = PolicyRegistry::default();
        for name in ["alpha", "alps", "beta", "alto"] {
            registry.propose(named(name)).expect("propose");
        }
        registry.revoke("pol-2").expect("revoke");
        let request = SearchPoliciesRequest {
            states: vec![PolicyState::Proposed as i32],
            filter: Some(crate::proto::tai::SearchFilter {
                name_prefix: "al".to_owned(),
                ..Default::default()
            }),
            limit: 5,
            ..Default::default()
        };
        let ids: Vec<String> = registry
            .search(&request)
            .into_iter()
            .map(|p| p.id)
            .collect();
        assert_eq!(ids, ["pol-1", "pol-4"]);
    }
}
