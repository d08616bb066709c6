// Package osauth is Sentry objectstore's authentication: EdDSA (Ed25519)
// JWTs scoped to a usecase and scopes, and presigned URLs. The server
// (package service) verifies with it; the client backend (package
// stash/objectstash) and `claimstash token` sign with it; `claimstash
// keygen` writes its keys. It depends on nothing else in claimstash.
//
// # Tokens
//
// A token's header names its key (kid, required); only alg EdDSA is
// accepted: none, every HS* and RS*, and a public key used as an HMAC
// secret are refused before any key is used. exp is required; aud, when
// present, must be "objectstore"; iss, when present, one of WithIssuers;
// nbf, when present, passed (no skew). A crit header is refused; jku, x5u,
// jwk and x5c are never read. The encoding is strict (base64url, unpadded,
// canonical), and a payload naming a member twice, a claim in another case
// ("EXP") or a time claim as a string is refused, so a token means one
// thing to every verifier. A request carrying different tokens (in
// x-os-auth twice, x-os-auth and Authorization, a header and os_auth) is
// refused. Claims:
//
//	{"res": {"os:usecase": "attachments", "org": "42", "project": "*"},
//	 "permissions": ["object.read", "object.write"], "exp": …}
//
// A request is allowed when the usecase matches (or is "*"), every scope
// the request names is in res with its value (or "*"), so a request may
// name fewer scopes than its token but none it does not cover, and the
// permission is both in the token and in the key's maximum.
//
// A Verifier remembers the tokens whose signature it has checked (up to
// 4096), so a client that reuses a token is not verified again per request;
// each use still checks exp and nbf, that the key is still known and the
// same (a removed or replaced key refuses at once), its maximum
// permissions, and the request's usecase, scopes and permission.
//
// # Presigned URLs
//
// os_kid, os_timestamp (RFC 3339), os_duration (seconds, at most 7 days)
// and os_sig, the base64url (unpadded) Ed25519 signature of CanonicalForm:
//
//	GET\n/v1/objects/testing/org=17;project=42/foo/bar\nos_duration=3600&os_kid=relay&os_timestamp=1985-04-12T23:20:50.52Z
//
// HEAD signs as GET; only GET and HEAD are allowed; 60 s of clock skew.
//
// # Keys
//
// GenerateKey writes <kid>.key (PEM PKCS #8: what objectstore's Python
// SecretKey takes) and <kid>.pub (PEM SubjectPublicKeyInfo). KeyDir
// serves every <kid>.pub in a directory, with an optional
// <kid>.permissions (one permission a line) capping what its tokens grant,
// and picks up added, rotated and removed keys without a restart; KeyFile
// does the same from one JSON file (LoadKeyFile reads it once). A kid is
// only ever looked up among the keys loaded, never read as a path, and a
// .pub file must hold one PEM PUBLIC KEY block and nothing else.
//
// # Errors
//
// Every refusal matches one of ErrMissing (400), ErrUnauthenticated (401)
// or ErrForbidden (403).
package osauth
