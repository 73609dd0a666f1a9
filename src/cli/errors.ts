/** An error caused by the user's input (a bad flag, a missing file): printed as one line, exit status 2. */
export class UserError extends Error {
  readonly userError = true;
  constructor(message: string) {
    super(message);
    this.name = 'UserError';
  }
}
