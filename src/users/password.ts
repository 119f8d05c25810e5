// Password hashing: argon2id through Bun.password (the async form does not block the loop).
export const hashPassword = (password: string): Promise<string> =>
  Bun.password.hash(password, { algorithm: "argon2id" });
