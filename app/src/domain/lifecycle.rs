//! A campaign's lifecycle as a state machine: which command may move it from which state, and who
//! may approve it. The service layer persists the result; this module only decides, so the UI can
//! grey out buttons with the same rules the server enforces.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::auth::Role;
use super::campaign::ApprovalPolicy;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CampaignState {
    Draft,
    Scheduled,
    Running,
    Paused,
    AwaitingApproval,
    Succeeded,
    Aborting,
    /// The rollback stopped rather than route users to members that are gone or unhealthy;
    /// the pool keeps serving from what it has. Resume (or abort again) retries the rollback.
    RollbackPaused,
    RolledBack,
    Failed,
}

impl CampaignState {
    pub const ALL: [CampaignState; 10] = [
        CampaignState::Draft,
        CampaignState::Scheduled,
        CampaignState::Running,
        CampaignState::Paused,
        CampaignState::AwaitingApproval,
        CampaignState::Succeeded,
        CampaignState::Aborting,
        CampaignState::RollbackPaused,
        CampaignState::RolledBack,
        CampaignState::Failed,
    ];

    /// The text a store keeps for this state (also its JSON form): `awaiting_approval`, …
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignState::Draft => "draft",
            CampaignState::Scheduled => "scheduled",
            CampaignState::Running => "running",
            CampaignState::Paused => "paused",
            CampaignState::AwaitingApproval => "awaiting_approval",
            CampaignState::Succeeded => "succeeded",
            CampaignState::Aborting => "aborting",
            CampaignState::RollbackPaused => "rollback_paused",
            CampaignState::RolledBack => "rolled_back",
            CampaignState::Failed => "failed",
        }
    }

    /// The state [`CampaignState::as_str`] wrote.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Nothing more will happen to a campaign in a terminal state.
    pub fn is_terminal(self) -> bool {
        matches!(self, CampaignState::Succeeded | CampaignState::RolledBack)
    }

    /// A campaign in one of these states holds its pool: no other campaign may start there.
    pub fn holds_pool(self) -> bool {
        self.is_active() || self == CampaignState::RollbackPaused
    }

    /// States in which the engine has a reconciler working on the campaign.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            CampaignState::Running
                | CampaignState::Paused
                | CampaignState::AwaitingApproval
                | CampaignState::Aborting
        )
    }

    pub fn label(self) -> &'static str {
        match self {
            CampaignState::Draft => "draft",
            CampaignState::Scheduled => "scheduled",
            CampaignState::Running => "running",
            CampaignState::Paused => "paused",
            CampaignState::AwaitingApproval => "awaiting approval",
            CampaignState::Succeeded => "succeeded",
            CampaignState::Aborting => "aborting",
            CampaignState::RollbackPaused => "rollback paused",
            CampaignState::RolledBack => "rolled back",
            CampaignState::Failed => "failed",
        }
    }
}

impl TryFrom<String> for CampaignState {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s).ok_or_else(|| format!("unknown campaign state '{s}'"))
    }
}

/// What one execution of a plan step is at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Running,
    Done,
    Skipped,
    Failed,
    /// The campaign rolled back while this step ran; it never finished.
    Interrupted,
}

impl StepStatus {
    pub const ALL: [StepStatus; 5] = [
        StepStatus::Running,
        StepStatus::Done,
        StepStatus::Skipped,
        StepStatus::Failed,
        StepStatus::Interrupted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Running => "running",
            StepStatus::Done => "done",
            StepStatus::Skipped => "skipped",
            StepStatus::Failed => "failed",
            StepStatus::Interrupted => "interrupted",
        }
    }

    /// The step is over (its finish time is recorded).
    pub fn is_finished(self) -> bool {
        self != StepStatus::Running
    }
}

impl TryFrom<String> for StepStatus {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| format!("unknown step status '{s}'"))
    }
}

/// Which list of steps a step run belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Forward,
    Rollback,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Forward => "forward",
            Phase::Rollback => "rollback",
        }
    }
}

impl TryFrom<String> for Phase {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "forward" => Ok(Phase::Forward),
            "rollback" => Ok(Phase::Rollback),
            _ => Err(format!("unknown phase '{s}'")),
        }
    }
}

/// Why a campaign is paused, so resuming knows what to do (drift: accept the router's state).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PauseCause {
    /// An operator paused it, or the plan did.
    Person,
    /// A step failed; resuming retries it.
    Error,
    /// The router was changed outside Switchyard; resuming accepts its state.
    Drift,
    /// A gate could not decide (a marginal comparison, too little data): resuming accepts the
    /// new release at this step and goes on; aborting rolls back.
    Judgement,
}

impl PauseCause {
    pub fn as_str(self) -> &'static str {
        match self {
            PauseCause::Person => "person",
            PauseCause::Error => "error",
            PauseCause::Drift => "drift",
            PauseCause::Judgement => "judgement",
        }
    }
}

impl TryFrom<String> for PauseCause {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        [PauseCause::Person, PauseCause::Error, PauseCause::Drift, PauseCause::Judgement]
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| format!("unknown pause cause '{s}'"))
    }
}

impl fmt::Display for CampaignState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Command {
    /// Set or move the start time (also from `Scheduled`: reschedule).
    Schedule,
    Start,
    Pause,
    Resume,
    /// The engine reached an approval step.
    RequestApproval,
    /// The approval that completes the policy's count (earlier ones don't change the state).
    Approve,
    Reject,
    /// Cut the current bake or pause short.
    Skip,
    Abort,
    Complete,
    Fail,
    /// The engine stopped a rollback that would have routed users to a dead member.
    PauseRollback,
    RollbackDone,
}

impl Command {
    pub const ALL: [Command; 13] = [
        Command::Schedule,
        Command::Start,
        Command::Pause,
        Command::Resume,
        Command::RequestApproval,
        Command::Approve,
        Command::Reject,
        Command::Skip,
        Command::Abort,
        Command::Complete,
        Command::Fail,
        Command::PauseRollback,
        Command::RollbackDone,
    ];

    /// The verb as it reads in "cannot {verb} a campaign that is …".
    pub fn verb(self) -> &'static str {
        match self {
            Command::Schedule => "schedule",
            Command::Start => "start",
            Command::Pause => "pause",
            Command::Resume => "resume",
            Command::RequestApproval => "request approval for",
            Command::Approve => "approve",
            Command::Reject => "reject",
            Command::Skip => "skip a step of",
            Command::Abort => "abort",
            Command::Complete => "complete",
            Command::Fail => "fail",
            Command::PauseRollback => "pause the rollback of",
            Command::RollbackDone => "finish rolling back",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[error("cannot {} a campaign that is {}", command.verb(), from.label())]
pub struct TransitionError {
    pub from: CampaignState,
    pub command: Command,
}

/// The state `command` moves a campaign in `state` to, or why it can't.
pub fn transition(
    state: CampaignState,
    command: Command,
) -> Result<CampaignState, TransitionError> {
    use CampaignState as S;
    use Command as C;
    let next = match (state, command) {
        (S::Draft | S::Scheduled, C::Schedule) => S::Scheduled,
        (S::Draft | S::Scheduled, C::Start) => S::Running,
        // Nothing has changed yet, so aborting a scheduled campaign just unschedules it.
        (S::Scheduled, C::Abort) => S::Draft,
        (S::Running | S::AwaitingApproval, C::Pause) => S::Paused,
        (S::Paused, C::Resume) => S::Running,
        (S::RollbackPaused, C::Resume) => S::Aborting,
        (S::Running, C::RequestApproval) => S::AwaitingApproval,
        (S::AwaitingApproval, C::Approve) => S::Running,
        (S::AwaitingApproval, C::Reject) => S::Aborting,
        (S::Running | S::Paused, C::Skip) => S::Running,
        (
            S::Running | S::Paused | S::AwaitingApproval | S::Failed | S::RollbackPaused,
            C::Abort,
        ) => S::Aborting,
        (S::Running, C::Complete) => S::Succeeded,
        (S::Running | S::Paused | S::AwaitingApproval | S::Aborting, C::Fail) => S::Failed,
        (S::Aborting, C::RollbackDone) => S::RolledBack,
        (S::Aborting, C::PauseRollback) => S::RollbackPaused,
        _ => {
            return Err(TransitionError { from: state, command });
        }
    };
    Ok(next)
}

/// Commands that `transition` accepts from `state`, for enabling buttons.
pub fn allowed_commands(state: CampaignState) -> Vec<Command> {
    Command::ALL.into_iter().filter(|c| transition(state, *c).is_ok()).collect()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub enum ApprovalError {
    #[error(
        "{approver} created this campaign and cannot approve it; ask another {needed} or admin"
    )]
    OwnCampaign { approver: String, needed: Role },
    #[error("approving needs the {needed} role or above; {approver} has the {have} role")]
    RoleTooLow { approver: String, needed: Role, have: Role },
}

/// Whether `approver` may approve a campaign `creator` made. Four eyes: never the creator.
pub fn can_approve(
    creator: &str,
    approver: &str,
    approver_role: Role,
    policy: &ApprovalPolicy,
) -> Result<(), ApprovalError> {
    // The policy could only name a lower role through a hand-edited record; approver is the floor.
    let needed = policy.role.max(Role::Approver);
    if creator.trim().eq_ignore_ascii_case(approver.trim()) {
        return Err(ApprovalError::OwnCampaign { approver: approver.to_string(), needed });
    }
    if !approver_role.allows(needed) {
        return Err(ApprovalError::RoleTooLow {
            approver: approver.to_string(),
            needed,
            have: approver_role,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use CampaignState as S;
    use Command as C;

    #[test]
    fn the_happy_path_runs_from_draft_to_succeeded() {
        let mut state = S::Draft;
        for (command, expected) in [
            (C::Schedule, S::Scheduled),
            (C::Start, S::Running),
            (C::Pause, S::Paused),
            (C::Resume, S::Running),
            (C::RequestApproval, S::AwaitingApproval),
            (C::Approve, S::Running),
            (C::Skip, S::Running),
            (C::Complete, S::Succeeded),
        ] {
            state = transition(state, command).expect("allowed");
            assert_eq!(state, expected, "after {command:?}");
        }
    }

    #[test]
    fn abort_leads_through_aborting_to_rolled_back() {
        for from in [S::Running, S::Paused, S::AwaitingApproval, S::Failed] {
            assert_eq!(transition(from, C::Abort), Ok(S::Aborting), "abort from {from}");
        }
        assert_eq!(transition(S::Aborting, C::RollbackDone), Ok(S::RolledBack));
        assert_eq!(transition(S::AwaitingApproval, C::Reject), Ok(S::Aborting));
        assert_eq!(transition(S::Scheduled, C::Abort), Ok(S::Draft));
    }

    #[test]
    fn every_state_is_stored_as_the_text_it_serializes_to_and_reads_back() {
        for state in CampaignState::ALL {
            let json = serde_json::to_value(state).expect("json");
            assert_eq!(json.as_str(), Some(state.as_str()));
            assert_eq!(CampaignState::try_from(state.as_str().to_string()), Ok(state));
        }
        assert!(CampaignState::try_from("runing".to_string()).is_err());
        for s in StepStatus::ALL {
            assert_eq!(serde_json::to_value(s).expect("json").as_str(), Some(s.as_str()));
        }
    }

    #[test]
    fn a_paused_rollback_is_retried_by_resume_or_abort() {
        assert_eq!(transition(S::Aborting, C::PauseRollback), Ok(S::RollbackPaused));
        assert_eq!(transition(S::RollbackPaused, C::Resume), Ok(S::Aborting));
        assert_eq!(transition(S::RollbackPaused, C::Abort), Ok(S::Aborting));
        assert!(transition(S::Running, C::PauseRollback).is_err());
        assert!(S::RollbackPaused.holds_pool() && !S::RollbackPaused.is_terminal());
    }

    #[test]
    fn a_failing_rollback_ends_failed_and_can_be_retried() {
        assert_eq!(transition(S::Aborting, C::Fail), Ok(S::Failed));
        assert_eq!(transition(S::Failed, C::Abort), Ok(S::Aborting));
    }

    #[test]
    fn refused_transitions_say_what_and_from_which_state() {
        let err = transition(S::Succeeded, C::Pause).expect_err("terminal");
        assert_eq!(err.to_string(), "cannot pause a campaign that is succeeded");
        let err = transition(S::AwaitingApproval, C::Skip).expect_err("approvals can't be skipped");
        assert_eq!(err.to_string(), "cannot skip a step of a campaign that is awaiting approval");
        assert!(transition(S::Draft, C::Approve).is_err());
        assert!(transition(S::Paused, C::Complete).is_err());
    }

    #[test]
    fn terminal_states_accept_no_command() {
        for state in CampaignState::ALL.into_iter().filter(|s| s.is_terminal()) {
            assert!(
                allowed_commands(state).is_empty(),
                "{state} allows {:?}",
                allowed_commands(state)
            );
        }
        assert_eq!(allowed_commands(S::Paused), [C::Resume, C::Skip, C::Abort, C::Fail]);
    }

    #[test]
    fn the_creator_can_never_approve_their_own_campaign() {
        let policy = ApprovalPolicy { required: 1, role: Role::Approver };
        let err = can_approve("alice", "alice", Role::Admin, &policy).expect_err("four eyes");
        assert_eq!(
            err.to_string(),
            "alice created this campaign and cannot approve it; ask another approver or admin"
        );
        assert!(can_approve("alice", "Alice", Role::Admin, &policy).is_err());
        assert_eq!(can_approve("alice", "bob", Role::Approver, &policy), Ok(()));
    }

    #[test]
    fn approving_needs_the_policy_role_or_above() {
        let admins = ApprovalPolicy { required: 1, role: Role::Admin };
        let err = can_approve("alice", "bob", Role::Approver, &admins).expect_err("admin needed");
        assert_eq!(
            err.to_string(),
            "approving needs the admin role or above; bob has the approver role"
        );
        assert_eq!(can_approve("alice", "carol", Role::Admin, &admins), Ok(()));
        let approvers = ApprovalPolicy { required: 1, role: Role::Approver };
        assert!(can_approve("alice", "dave", Role::Operator, &approvers).is_err());
    }
}
