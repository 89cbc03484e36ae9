/**
 * Google's own addresses, in one place: the defaults of the `google.*` keys (the scopes a token
 * asks for are in auth/scopes.ts). Everything else reaches Google through configuration (`google.tokenUrl`,
 * `google.apiRootUrl`, a key file's `token_uri`), which is how tests and private endpoints send
 * it elsewhere.
 */

/** Google's OAuth 2.0 token endpoint, where a signed JWT is exchanged for an access token. */
export const GOOGLE_TOKEN_URL = 'https://oauth2.googleapis.com/token';

/** Root of the Google Analytics Data API (v1beta `runReport`, `getMetadata`). */
export const GOOGLE_DATA_API_ROOT_URL = 'https://analyticsdata.googleapis.com/';

/** Root of the IAM Service Account Credentials API (generateAccessToken, impersonation). */
export const GOOGLE_IAM_CREDENTIALS_ROOT_URL = 'https://iamcredentials.googleapis.com/';

/** Root of the Google Analytics Admin API (v1beta `accountSummaries.list`, property discovery). */
export const GOOGLE_ADMIN_API_ROOT_URL = 'https://analyticsadmin.googleapis.com/';

/** Root of the Search Console API (`searchanalytics.query`). */
export const GOOGLE_SEARCH_CONSOLE_ROOT_URL = 'https://searchconsole.googleapis.com/';
