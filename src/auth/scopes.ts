/**
 * The OAuth scopes tokens are asked with. One token per principal serves every Google API the
 * collector calls, so it carries the scopes of all of them: the GA4 Data and Admin APIs
 * (`analytics.readonly`) and Search Console (`webmasters.readonly`). Both are read-only.
 *
 * A token that only serves to mint another one (the base credentials of an impersonation) asks
 * for `cloud-platform` instead: IAM Credentials' generateAccessToken requires it (or `iam`) of its
 * caller (https://cloud.google.com/iam/docs/reference/credentials/rest/v1/projects.serviceAccounts/generateAccessToken).
 */
const ANALYTICS_READONLY_SCOPE = 'https://www.googleapis.com/auth/analytics.readonly';
const WEBMASTERS_READONLY_SCOPE = 'https://www.googleapis.com/auth/webmasters.readonly';
export const CLOUD_PLATFORM_SCOPE = 'https://www.googleapis.com/auth/cloud-platform';

/** The scopes of every token the APIs are called with. */
export const API_SCOPES: readonly string[] = [ANALYTICS_READONLY_SCOPE, WEBMASTERS_READONLY_SCOPE];
