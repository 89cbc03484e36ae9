/**
 * What one exchange of any credential kind yields, and the shape every kind's exchange has.
 */
import type { ExchangedToken } from './exchange.js';

export interface MintedToken extends ExchangedToken {
  /** the principal, when the exchange itself told it (the metadata server's email, a person's ID token) */
  account?: string;
}
