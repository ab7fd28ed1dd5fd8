/** Token endpoint errors in the RFC 6749 §5.2 shape (not problem+json: OAuth clients expect this). */
import type { OAuthError } from "../../core/protocol/auth.ts";

export class OAuthFailure extends Error {
  constructor(
    readonly error: OAuthError["error"],
    readonly description: string,
    readonly status = error === "invalid_client" ? 401 : 400,
  ) {
    super(description);
    this.name = "OAuthFailure";
  }

  toJSON(): OAuthError {
    return { error: this.error, error_description: this.description };
  }
}
