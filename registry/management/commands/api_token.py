"""Issue, rotate or revoke a user's API token from the shell."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from registry import tokens


class Command(BaseCommand):
    help = (
        "Issue a new API token for USERNAME (revoking the one they had) and print "
        "its key, or revoke it with --revoke."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument(
            "--revoke", action="store_true", help="Revoke the token instead."
        )

    def handle(self, *args, username: str, revoke: bool, **opts):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"没有用户 {username} / There is no user {username}.")
        if revoke:
            if tokens.token_revoke(user=user):
                self.stdout.write(f"已撤销 / Revoked the API token of {username}.")
            else:
                self.stdout.write(f"{username} 没有令牌 / {username} had no API token.")
            return
        self.stdout.write(tokens.token_issue(user=user).key)
