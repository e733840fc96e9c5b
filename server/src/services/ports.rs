//! The services as the pages' server functions reach them ([`app::api::ports`]): one bundle
//! that routes each call to the service of its concern, and holds no rules of its own.

use app::api::ApiError;
use app::api::ports::CampaignsPort;
use app::domain::auth::Principal;
use app::domain::lifecycle::Command;
use app::domain::views::{CampaignDetail, CampaignPage, CampaignSummary, TrafficView};

use crate::services::campaigns::{CampaignService, status_filter};
use crate::services::charts::ChartService;
use crate::services::environments::EnvironmentService;
use crate::store::CampaignQuery;

/// Every service the dashboard's pages use.
#[derive(Clone)]
pub struct Services {
    pub campaigns: CampaignService,
    pub environments: EnvironmentService,
    pub charts: ChartService,
}

#[async_trait::async_trait]
impl CampaignsPort for Services {
    async fn chart(
        &self,
        actor: &Principal,
        id: i64,
        target: Option<String>,
        tz: String,
        width: u32,
    ) -> Result<app::domain::views::ChartView, ApiError> {
        self.charts.chart(actor, id, target, &tz, width).await
    }
    async fn list(
        &self,
        actor: &Principal,
        status: Option<String>,
        environment: Option<String>,
        search: Option<String>,
        page: u32,
    ) -> Result<CampaignPage, ApiError> {
        let status = status_filter(status)?;
        self.campaigns.list(actor, CampaignQuery { status, environment, search }, page, 50).await
    }
    async fn get(&self, actor: &Principal, id: i64) -> Result<CampaignDetail, ApiError> {
        self.campaigns.get(actor, id).await
    }
    async fn command(
        &self,
        actor: &Principal,
        id: i64,
        command: Command,
        reason: &str,
    ) -> Result<CampaignSummary, ApiError> {
        match command {
            Command::Start => self.campaigns.start(actor, id).await,
            Command::Schedule => self.campaigns.schedule(actor, id).await,
            Command::Pause => self.campaigns.pause(actor, id).await,
            Command::Resume => self.campaigns.resume(actor, id).await,
            Command::Approve => self.campaigns.approve(actor, id).await,
            Command::Reject => self.campaigns.reject(actor, id, reason).await,
            Command::Skip => self.campaigns.skip(actor, id, reason).await,
            Command::Abort => self.campaigns.abort(actor, id, reason).await,
            other => Err(ApiError::field(
                "command",
                format!("'{}' is done by the engine, not by people", other.verb()),
            )),
        }
    }
    async fn traffic(&self, actor: &Principal, id: i64) -> Result<TrafficView, ApiError> {
        self.campaigns.traffic(actor, id).await
    }

    async fn environments(
        &self,
        actor: &Principal,
    ) -> Result<Vec<app::domain::views::EnvironmentOverview>, ApiError> {
        self.environments.overviews(actor).await
    }

    async fn check_backends(
        &self,
        actor: &Principal,
    ) -> Result<Vec<app::domain::views::BackendCheckView>, ApiError> {
        self.environments.check_backends(actor).await
    }

    async fn comms(
        &self,
        actor: &Principal,
        id: i64,
    ) -> Result<app::api::comms::CommsView, ApiError> {
        self.campaigns.comms(actor, id).await
    }

    async fn accept_live_state(
        &self,
        actor: &Principal,
        environment: &str,
        pool: &str,
    ) -> Result<app::domain::views::PoolOverview, ApiError> {
        self.environments.accept_live_state(actor, environment, pool).await
    }

    async fn impact(
        &self,
        actor: &Principal,
        id: i64,
    ) -> Result<app::domain::views::ImpactReport, ApiError> {
        self.campaigns.impact(actor, id).await
    }

    async fn replay_gate(
        &self,
        actor: &Principal,
        id: i64,
        gate: app::domain::campaign::GateSpec,
    ) -> Result<app::domain::views::GateReplay, ApiError> {
        self.campaigns.replay_gate(actor, id, Some(gate)).await
    }
}
