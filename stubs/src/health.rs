//! `grpc.health.v1.Health` for the stub servers, and [`HealthControl`], the handle tests use
//! to change what it reports.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

pub use crate::proto::grpc::health::v1::health_check_response::ServingStatus;
use crate::proto::grpc::health::v1::health_server::Health;
use crate::proto::grpc::health::v1::{HealthCheckRequest, HealthCheckResponse};

/// The services a fresh store reports as `SERVING`: the whole server (`""`) and both TAI
/// services.
const KNOWN_SERVICES: [&str; 3] = ["", "tai.Governor", "tai.Coordinator"];

/// Sets the serving status each health service of a store reports.
///
/// Cloning gives another handle to the same statuses. Changes reach running `Watch` streams.
#[derive(Debug, Clone)]
pub struct HealthControl {
    /// A watch channel rather than a plain map so `Watch` streams wake on every change.
    statuses: Arc<watch::Sender<HashMap<String, ServingStatus>>>,
}

impl Default for HealthControl {
    fn default() -> Self {
        let statuses = KNOWN_SERVICES
            .iter()
            .map(|s| ((*s).to_owned(), ServingStatus::Serving))
            .collect();
        Self {
            statuses: Arc::new(watch::Sender::new(statuses)),
        }
    }
}

impl HealthControl {
    /// Sets the status reported for `service`; an unknown service becomes known.
    pub fn set(&self, service: &str, status: ServingStatus) {
        self.statuses.send_modify(|map| {
            map.insert(service.to_owned(), status);
        });
    }

    /// The status reported for `service`, or `None` when it is unknown.
    pub fn get(&self, service: &str) -> Option<ServingStatus> {
        self.statuses.borrow().get(service).copied()
    }
}

/// The `grpc.health.v1.Health` implementation over a [`HealthControl`].
#[derive(Debug, Clone)]
pub(crate) struct HealthService {
    control: HealthControl,
    /// Becomes `true` when the server shuts down. `Watch` streams never end on their own,
    /// and a graceful shutdown waits for open streams, so they must end on this signal.
    stopping: watch::Receiver<bool>,
}

impl HealthService {
    /// A health service reporting what `control` says until `stopping` turns `true`.
    pub(crate) fn new(control: HealthControl, stopping: watch::Receiver<bool>) -> Self {
        Self { control, stopping }
    }
}

#[tonic::async_trait]
impl Health for HealthService {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        let service = request.into_inner().service;
        match self.control.get(&service) {
            Some(status) => Ok(Response::new(HealthCheckResponse {
                status: status as i32,
            })),
            None => Err(Status::not_found(format!("unknown service {service:?}"))),
        }
    }

    type WatchStream = ReceiverStream<Result<HealthCheckResponse, Status>>;

    /// Sends the current status (`SERVICE_UNKNOWN` for an unknown service), then each change,
    /// until the client goes away or the server shuts down.
    async fn watch(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let service = request.into_inner().service;
        let mut statuses = self.control.statuses.subscribe();
        let mut stopping = self.stopping.clone();
        // A small buffer is enough: a slow reader only delays the forwarding task.
        let (sender, receiver) = mpsc::channel(4);
        tokio::spawn(async move {
            let mut last = None;
            loop {
                let status = statuses
                    .borrow_and_update()
                    .get(&service)
                    .copied()
                    .unwrap_or(ServingStatus::ServiceUnknown);
                if last != Some(status) {
                    let reply = HealthCheckResponse {
                        status: status as i32,
                    };
                    if sender.send(Ok(reply)).await.is_err() {
                        return;
                    }
                    last = Some(status);
                }
                // End the task as soon as the client goes away, not at the next change.
                tokio::select! {
                    changed = statuses.changed() => if changed.is_err() { return },
                    () = sender.closed() => return,
                    _ = stopping.wait_for(|stop| *stop) => return,
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(receiver)))
    }
}
