// The types every emulator response is validated against. Each one is the official SDK's own
// response type (re-exported untouched); the few derived ones only name a part of an SDK type
// (an item of a list, the payload inside a webhook delivery).
import type * as Auth from '@dfns/sdk/generated/auth/types';
import type * as Wallets from '@dfns/sdk/generated/wallets/types';
import type * as Webhooks from '@dfns/sdk/generated/webhooks/types';
import type * as Permissions from '@dfns/sdk/generated/permissions/types';
import type * as Policies from '@dfns/sdk/generated/policies/types';

// auth
export type CreateUserActionChallengeResponse = Auth.CreateUserActionChallengeResponse;
export type CreateUserActionSignatureResponse = Auth.CreateUserActionSignatureResponse;
export type GetServiceAccountResponse = Auth.GetServiceAccountResponse;
export type ListAuditLogsResponse = Auth.ListAuditLogsResponse;
export type GetAuditLogResponse = Auth.GetAuditLogResponse;

// permissions
export type ListPermissionsResponse = Permissions.ListPermissionsResponse;
export type ListAssignmentsResponse = Permissions.ListAssignmentsResponse;

// wallets
export type CreateWalletResponse = Wallets.CreateWalletResponse;
export type GetWalletResponse = Wallets.GetWalletResponse;
export type ListWalletsResponse = Wallets.ListWalletsResponse;
export type UpdateWalletResponse = Wallets.UpdateWalletResponse;
export type TagWalletResponse = Wallets.TagWalletResponse;
export type UntagWalletResponse = Wallets.UntagWalletResponse;
export type GetWalletAssetsResponse = Wallets.GetWalletAssetsResponse;
export type GetWalletHistoryResponse = Wallets.GetWalletHistoryResponse;
export type TransferAssetResponse = Wallets.TransferAssetResponse;
export type GetTransferResponse = Wallets.GetTransferResponse;
export type ListTransfersResponse = Wallets.ListTransfersResponse;

// webhooks
export type CreateWebhookResponse = Webhooks.CreateWebhookResponse;
export type GetWebhookResponse = Webhooks.GetWebhookResponse;
export type ListWebhooksResponse = Webhooks.ListWebhooksResponse;
export type UpdateWebhookResponse = Webhooks.UpdateWebhookResponse;
export type DeleteWebhookResponse = Webhooks.DeleteWebhookResponse;
export type PingWebhookResponse = Webhooks.PingWebhookResponse;
/**
 * Dfns' webhook documentation (docs/dfns.md §7.6) adds four fields to a stored event that the SDK
 * 0.8.21 type predates. They are allowed (optional) by name and type, and nothing else: the schema
 * stays closed.
 */
export type DocumentedWebhookEventFields = {
    deliveryFailed?: boolean;
    deliveryAttempt?: number;
    /** Id of the previous failed attempt, on retries only. */
    retryOf?: string;
    /** ISO date of the next retry; absent when no retry is scheduled. */
    nextAttemptDate?: string;
};
export type StoredWebhookEvent = Webhooks.GetWebhookEventResponse & DocumentedWebhookEventFields;
export type ListWebhookEventsResponse = Omit<Webhooks.ListWebhookEventsResponse, 'items'> & {
    items: StoredWebhookEvent[];
};
export type GetWebhookEventResponse = StoredWebhookEvent;

// policies and approvals (used by the part-2 scenario, issue 4)
export type CreatePolicyResponse = Policies.CreatePolicyResponse;
export type GetPolicyResponse = Policies.GetPolicyResponse;
export type ListPoliciesResponse = Policies.ListPoliciesResponse;
export type UpdatePolicyResponse = Policies.UpdatePolicyResponse;
export type ArchivePolicyResponse = Policies.ArchivePolicyResponse;
export type GetApprovalResponse = Policies.GetApprovalResponse;
export type ListApprovalsResponse = Policies.ListApprovalsResponse;
export type CreateApprovalDecisionResponse = Policies.CreateApprovalDecisionResponse;

// Parts of SDK types, named so that what a webhook delivers can be checked with them.
/**
 * The change request a `Policies:Modify` policy makes of an update or archive: the 202 body the SDK
 * throws as `PolicyPendingError.context`, and a policy's `pendingChangeRequest`.
 */
export type PolicyChangeRequest = NonNullable<Policies.GetPolicyResponse['pendingChangeRequest']>;
/** The Policy object inside a `policy.triggered` evaluation (the same object Create Policy returns). */
export type PolicyObject = Policies.CreatePolicyResponse;
/** One entry of a wallet's history = the `blockchainEvent` of `wallet.blockchainevent.detected`. */
export type BlockchainEvent = Wallets.GetWalletHistoryResponse['items'][number];
/** The `transferRequest` of `wallet.transfer.*` events: the same object as Get Transfer. */
export type TransferRequest = Wallets.GetTransferResponse;
/** Event kinds a webhook can subscribe to, as the SDK enumerates them. */
export type WebhookEventKind = Webhooks.GetWebhookEventResponse['kind'];

/**
 * The body Dfns POSTs to a webhook's url. The SDK has no type for it: the envelope follows Dfns'
 * webhook documentation (see docs/dfns.md §7.4); `kind` and everything inside `data` are
 * checked with the SDK's own types above.
 */
export type WebhookDelivery = {
    id: string;
    kind: WebhookEventKind;
    date: string;
    /** Unix seconds. */
    timestampSent: number;
    deliveryAttempt: number;
    retryOf?: string;
    data: { [key: string]: unknown };
    /** Seen in older delivered bodies; tolerated. */
    status?: string;
    error?: string;
};
