from warmstart_localcluster.nodeagent.agent import main

main()
