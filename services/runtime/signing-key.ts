import { createPrivateKey, type KeyObject } from "node:crypto";

/**
 * A JWS signing key from a PEM private key (PKCS#8, SEC1 or PKCS#1): EC P-256 signs ES256,
 * RSA of 2048 bits or more RS256. Errors never quote the key.
 */
export interface SigningKey {
  key: KeyObject;
  alg: "ES256" | "RS256";
}

export function loadSigningKey(pem: string): SigningKey {
  // a PEM passed through an environment variable often has its newlines written as \n
  const text = !pem.includes("\n") && pem.includes("\\n") ? pem.replaceAll("\\n", "\n") : pem;
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: text, format: "pem" });
  } catch {
    throw new Error("not a PEM private key (PKCS#8, SEC1 or PKCS#1)");
  }
  if (key.asymmetricKeyType === "ec") {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve !== "prime256v1") throw new Error(`an EC key must be on P-256 to sign ES256 (got ${curve ?? "an unknown curve"})`);
    return { key, alg: "ES256" };
  }
  if (key.asymmetricKeyType === "rsa") {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < 2048) throw new Error(`an RSA key must have at least 2048 bits to sign RS256 (got ${bits})`);
    return { key, alg: "RS256" };
  }
  throw new Error(`a ${key.asymmetricKeyType ?? "key of unknown type"} key cannot sign ES256 or RS256; use an EC P-256 or an RSA key`);
}
