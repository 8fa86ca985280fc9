cmd_Release/fanout.node := ln -f "Release/obj.target/fanout.node" "Release/fanout.node" 2>/dev/null || (rm -rf "Release/fanout.node" && cp -af "Release/obj.target/fanout.node" "Release/fanout.node")
