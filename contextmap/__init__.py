"""The context map: PEEK's orientation cache and the policy that maintains it."""
