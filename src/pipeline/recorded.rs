//! The event step around unary writes (non-GET rules) of methods whose route has `events:`
//! ([`crate::events`]): after a successful answer the write's event is built and spooled —
//! `before_response` routes answer only once it is durable in the outbox, `best_effort` routes
//! hand it over without waiting. A failed write emits nothing.
//!
//! A `before_response` write reserves room in the spool *before* its backend call: when the
//! spool is full the write is refused with 503 without having happened, so an answered write
//! always has its event.

use std::sync::Arc;

use super::answer::{Answer, Failure, HttpCall};
use super::outcome::Outcome;
use super::unary;
use crate::body::RequestBody;
use crate::config::Durability;
use crate::edge::metadata::REQUEST_ID;
use crate::events::Events;
use crate::events::emit::{EventPlan, Written};
use crate::events::outbox::Reservation;

/// The event a write emits if it succeeds, with its room in the spool already taken.
pub(crate) struct Recording<'a> {
    events: &'a Events,
    plan: Arc<EventPlan>,
    /// `before_response` only.
    reservation: Option<Reservation>,
}

impl<'a> Recording<'a> {
    /// The recording of a unary `call`, if it is a write whose method emits events; `Err` (503)
    /// when its route waits for the spool and the spool is full.
    #[allow(clippy::result_large_err)] // the error path is cold; `Failure` is the pipeline's one shape
    pub(crate) fn of<B>(
        call: &HttpCall<'_, B>,
        events: Option<&'a Events>,
    ) -> Result<Option<Recording<'a>>, Failure> {
        let (Some(events), Some(plan)) = (events, call.binding.method.events.as_ref()) else {
            return Ok(None);
        };
        if call.binding.http_method == "GET" {
            return Ok(None);
        }
        let reservation = match plan.durability {
            Durability::BeforeResponse => Some(events.reserve()?),
            Durability::BestEffort => None,
        };
        Ok(Some(Recording {
            events,
            plan: plan.clone(),
            reservation,
        }))
    }
}

/// A unary write that records its event once it has succeeded.
pub(crate) async fn unary<B: RequestBody>(
    call: HttpCall<'_, B>,
    recording: Recording<'_>,
    outcome: &mut Outcome,
) -> Answer {
    // What the event needs from the request, taken before the call consumes it.
    let vars = match recording.plan.path_variable() {
        Some(_) => call.vars.clone(),
        None => Vec::new(),
    };
    let request_id = call.admitted.metadata.get(REQUEST_ID);
    let request_id = request_id.and_then(|v| v.to_str().ok()).unwrap_or_default();
    let request_id = request_id.to_owned();
    let exchange = unary::exchange(call, outcome).await?;
    let response = unary::respond(&exchange.binding, &exchange.reply, exchange.headers.clone())?;
    let written = Written {
        request: &exchange.request,
        response: &exchange.reply,
        vars: &vars,
        subject: outcome.admission.subject.as_deref(),
        request_id: &request_id,
    };
    let Recording {
        events,
        plan,
        reservation,
    } = recording;
    let record = events.record(&plan, &written);
    match reservation {
        Some(reservation) => events
            .append(&record, reservation)
            .await
            .map_err(|e| Failure::with(e, &exchange.headers))?,
        None => events.offer(&plan, &record),
    }
    Ok(response)
}
