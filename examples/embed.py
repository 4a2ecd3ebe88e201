"""Embed p2pcomments in an app: open a node, start a thread, comment, and print the live tree.

Run: P2PC_HOME=/tmp/p2pc-demo python examples/embed.py
"""

import trio

from p2pcomments import open_node


async def main() -> None:
    async with open_node(create_identity=True) as node:
        await node.set_profile("Demo")
        thread = await node.create_thread("Hello, world", url="https://blog.example/hello")
        async with node.watch(thread.id) as changes:
            first = await node.comment(thread.id, "First!")
            await node.reply(first.id, "Welcome.")
            async for change in changes:
                view = node.thread_view(thread.id)
                print(f"-- {change.kind.name.lower() if change.kind else 'lagged'}: {view.title}")
                for comment in view.comments:
                    print(f"{'  ' * comment.depth}{comment.author_name}: {comment.body}")
                if len(view.comments) == 2:
                    break


if __name__ == "__main__":
    trio.run(main)
